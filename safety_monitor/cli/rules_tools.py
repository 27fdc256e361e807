"""Owns the rule tools of the command line: `rules test`, `rules backtest`, `rules reload`, `grades
disagreements` and `sae report-submitted`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from safety_monitor.bootstrap import App, load_configuration
from safety_monitor.cli.backtest import BacktestInputError, backtest, format_report
from safety_monitor.cli.common import app_for, as_user_option, pid_file_option, run_app, settings_from_env
from safety_monitor.cli.rule_tests import CaseFileError, case_files, case_routing, run_files
from safety_monitor.domain.review import ReviewRefused
from safety_monitor.domain.rules import Ruleset
from safety_monitor.domain.users import AccountRefused
from safety_monitor.ruleset.errors import ConfigInvalid
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.ruleset.routing_loader import ROUTING_FILE
from safety_monitor.service.review import record_report_submitted

# Where a long-running process (Kafka `worker`, embedded `serve`) writes its process id, so `rules reload` can
# send it SIGHUP.


def _load_or_exit(directory: Path) -> Ruleset:
    try:
        return load_ruleset(directory)
    except ConfigInvalid as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(exc.errors)} error(s) in {directory}", err=True)
        sys.exit(1)


@click.command("test")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--tests",
    "tests_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the test files are (default: DIRECTORY/tests).",
)
def rules_test(directory: Path | None, tests_dir: Path | None) -> None:
    """Run the YAML test cases of the rules in DIRECTORY (input messages -> expected hits, alerts, and the
    emails DIRECTORY/routing.yaml routes) against the in-memory store; exit 1 on any failure, with what differed."""
    settings = settings_from_env()
    target = directory or settings.rules_dir
    ruleset = _load_or_exit(target)
    try:
        routing = case_routing(target, settings.templates_dir)
    except ConfigInvalid as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(exc.errors)} error(s) in {target / ROUTING_FILE}", err=True)
        sys.exit(1)
    files = case_files(tests_dir or target)
    if not files:
        click.echo(f"no test files in {(tests_dir or target / 'tests')}", err=True)
        sys.exit(1)
    try:
        results = asyncio.run(run_files(ruleset, files, templates_dir=settings.templates_dir, routing=routing))
    except CaseFileError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(exc.errors)} error(s) in the test files; no case was run", err=True)
        sys.exit(1)
    failed = [r for r in results if not r.passed]
    for result in failed:
        click.echo(f"FAIL {result.file}:{result.line} {result.name}", err=True)
        for problem in result.problems:
            click.echo(problem, err=True)
    click.echo(
        f"{len(results) - len(failed)} passed, {len(failed)} failed ({len(files)} files, ruleset "
        f"{ruleset.content_hash[:12]})"
    )
    if failed:
        sys.exit(1)


@click.command("backtest")
@click.option("--rules", "rules_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True)
def rules_backtest(rules_dir: Path, data: tuple[Path, ...], fmt: str, batch_size: int) -> None:
    """What each rule in --rules would have raised on DATA (wire JSONL, or SDTM AE/LB/VS/EG as CSV or XPT),
    per rule and per subject. Runs in a throw-away store and sends nothing."""
    ruleset = _load_or_exit(rules_dir)
    try:
        report = asyncio.run(backtest(ruleset, data, batch_size=batch_size, progress=fmt == "table"))
    except BacktestInputError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(report.as_dict(), indent=2) if fmt == "json" else format_report(report))


@click.command("reload")
@pid_file_option("The running process's pid file (worker or serve).")
def rules_reload(pid_file: Path) -> None:
    """Check the configured rules and routing.yaml, then ask the running process (`worker` or `serve`, by its
    pid file) to reload both with SIGHUP; exit 1 with every error, nothing signalled, if they do not load.

    The process swaps in rules and routing together or keeps the last good pair, and logs which; checking first
    here means a broken file is reported to you, not only to the process's log.
    """
    settings = settings_from_env()
    try:
        configuration = load_configuration(settings)
    except ConfigInvalid as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(exc.errors)} error(s) in {settings.rules_dir}; nothing reloaded", err=True)
        sys.exit(1)
    loads = f"ruleset {configuration.ruleset_hash[:12]}, routing {configuration.routing_hash[:12] or '(none)'}"
    if not pid_file.is_file():
        raise click.ClickException(
            f"rules OK ({loads}), but no running worker or serve: {pid_file} not found. "
            "One-shot commands read the rules when they start; nothing to reload."
        )
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (ValueError, ProcessLookupError, PermissionError) as exc:
        raise click.ClickException(f"could not signal the process from {pid_file}: {exc}") from None
    click.echo(f"sent SIGHUP to process {pid}; it loads {loads} or keeps its current pair")


@click.group()
def grades() -> None:
    """Investigator and value-derived grades."""


DISAGREEMENT_COLUMNS = ("study_id", "subject_id", "aespid", "pt", "investigator_grade", "derived_grade", "derived_term")


@grades.command("disagreements")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="List every AE with a derived grade, agreeing or not.")
def grades_disagreements(fmt: str, show_all: bool) -> None:
    """AEs whose investigator grade (AETOXGR) differs from the grade derived from the subject's values."""
    app = app_for(settings_from_env())

    async def work(app: App) -> list[dict[str, object]]:
        async with app.store() as uow:
            events = await uow.adverse_events.with_derived_grade()
        return [
            {
                "study_id": e.envelope.study_id,
                "subject_id": e.envelope.subject_id,
                "aespid": e.ae_spid,
                "pt": e.preferred_term,
                "investigator_grade": e.investigator_grade,
                "derived_grade": e.derived_grade,
                "derived_term": e.derived_term,
            }
            for e in events
            if show_all or e.derived_grade != e.investigator_grade
        ]

    rows = run_app(app, work)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=DISAGREEMENT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    elif not rows:
        click.echo("no disagreements between investigator and value-derived grades")
    else:
        click.echo(f"{'subject':<26} {'AE':<10} {'PT':<36} {'inv':>3} {'derived':>7}  derived from")
        for r in rows:
            click.echo(
                f"{r['subject_id']!s:<26} {r['aespid']!s:<10} {str(r['pt'])[:36]:<36} {r['investigator_grade']!s:>3} "
                f"{r['derived_grade']!s:>7}  {r['derived_term']}"
            )


@click.group()
def sae() -> None:
    """The expedited-reporting clock of potential SUSARs."""


@sae.command("report-submitted")
@click.option("--subject", "subject_id", required=True, help="USUBJID of the case.")
@click.option("--aespid", required=True, help="AESPID of the case.")
@click.option("--date", "submitted", required=True, help="When the report was submitted (ISO 8601 date or date-time).")
@click.option("--study", "study_id", default=None, help="STUDYID (default: the study whose clock matches).")
@as_user_option
@click.option("--reason", default="expedited report submitted to the authorities", show_default=True)
def sae_report_submitted(
    subject_id: str, aespid: str, submitted: str, study_id: str | None, user_name: str, reason: str
) -> None:
    """Record that the expedited report of a case was submitted: its reporting clock stops.

    The same as the review action `report-submitted` on the case's clock alert: it is kept in the alert's audit
    trail (`safety-monitor review show`).
    """
    try:
        at = datetime.fromisoformat(submitted)
    except ValueError:
        raise click.ClickException(f"--date {submitted!r} is not an ISO 8601 date or date-time") from None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    app = app_for(settings_from_env())

    async def work(app: App) -> int:
        async with app.store() as uow:
            open_clocks = await uow.sae_clocks.open()
        cases = {
            c.key
            for c in open_clocks
            if (c.subject_id, c.ae_spid) == (subject_id, aespid) and (study_id is None or c.study_id == study_id)
        }
        for case in sorted(cases):
            await record_report_submitted(
                app.store, case, user_name=user_name, reason=reason, at=app.clock.now(), submitted_at=at
            )
        return len(cases)

    try:
        closed = run_app(app, work)
    except (ReviewRefused, AccountRefused) as exc:
        raise click.ClickException(str(exc)) from None
    if not closed:
        raise click.ClickException(f"no open reporting clock for subject {subject_id} AE {aespid}")
    click.echo(f"reporting clock stopped for subject {subject_id} AE {aespid} (report submitted {at.isoformat()})")
