"""Owns the `safety-monitor` command: demo, replay, serve, incidence, digest, schema, deliver, db and rules."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from safety_monitor.bootstrap import App
from safety_monitor.cli.boundaries import boundaries
from safety_monitor.cli.common import (
    alerting_settings_from_env,
    app_for,
    print_delivery,
    print_summary,
    run_app,
    settings_from_env,
)
from safety_monitor.cli.demo import demo
from safety_monitor.cli.grade_labs import grade_labs
from safety_monitor.cli.health import health
from safety_monitor.cli.lazy import LazyGroup
from safety_monitor.cli.report import report
from safety_monitor.cli.review import review
from safety_monitor.cli.rules_tools import grades, rules_backtest, rules_reload, rules_test, sae
from safety_monitor.cli.serve import serve
from safety_monitor.cli.users import audit, users
from safety_monitor.domain.routing import DIGEST_PERIODS, reserved_domain
from safety_monitor.ruleset.errors import ConfigError, ConfigInvalid
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.ruleset.routing_loader import ROUTING_FILE, load_routing
from safety_monitor.service.digests import build_digest, send_digest
from safety_monitor.service.views import incidence_table
from streams.embedded import replay_file
from streams.wire import json_schemas

# Imported when run: FastAPI, uvicorn and kafka-python are a second of start-up the other commands do not need.
_LAZY = {
    "web": "safety_monitor.cli.web:web",
    "worker": "safety_monitor.cli.kafka:worker",
    "publish": "safety_monitor.cli.kafka:publish",
    "topics": "safety_monitor.cli.kafka:topics",
}


@click.group(cls=LazyGroup, lazy=_LAZY)
@click.option(
    "-v", "--verbose", is_flag=True, help="Log progress and retries to stderr; a failure shows its traceback."
)
@click.option(
    "--debug",
    is_flag=True,
    help="Log everything, with tracebacks and SQL parameters: this shows subject data (USUBJID, verbatim terms) "
    "in the log. For a developer's machine, never for production logs.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Clinical-trial safety monitor: grade AEs, labs and vitals, apply safety rules, alert, report incidence.

    Configuration comes from environment variables (see README): DATABASE_URL, MAIL_BACKEND, SMTP_*, and the
    receivers' addresses rules/routing.yaml names (MEDICAL_MONITOR_EMAILS, DSMB_EMAILS, ...).
    """
    ctx.meta["safety_monitor.verbose"] = verbose or debug
    # Files the service creates (database, mail, inbox moves, pid and lock files) are its user's alone: 0600,
    # directories 0700. They hold subject data.
    os.umask(0o077)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=None, help="Messages per transaction.")
@click.option("--no-deliver", is_flag=True, help="Leave the outbox for `safety-monitor deliver`.")
def replay(file: Path, batch_size: int | None, no_deliver: bool) -> None:
    """Feed a JSONL file of wire messages through the embedded runtime into the configured database."""
    settings = alerting_settings_from_env()
    app = app_for(settings)

    async def work(app: App) -> str | None:
        summary = await replay_file(app, file, batch_size=batch_size)
        report = None if no_deliver else await app.deliver()
        print_summary(summary)
        return print_delivery(report, await _outbox_counts(app), app.settings)

    failure = run_app(app, work, create=True)
    if failure:
        raise click.ClickException(failure)


async def _outbox_counts(app: App) -> dict[str, int]:
    async with app.store() as uow:
        return await uow.outbox.counts()


@cli.command()
def deliver() -> None:
    """Email the notification groups that are due and send the outbox (retries of failed sends included)."""
    app = app_for(settings_from_env())

    async def work(app: App) -> str | None:
        report = await app.deliver()
        return print_delivery(report, await _outbox_counts(app), app.settings)

    failure = run_app(app, work)
    if failure:
        raise click.ClickException(failure)


INCIDENCE_COLUMNS = ("study_id", "soc", "pt", "grade_band", "subjects", "denominator", "percent")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--treatment-emergent", is_flag=True, help="Only AEs with onset on or after the first dose.")
def incidence(fmt: str, treatment_emergent: bool) -> None:
    """Cumulative AE incidence by SOC / PT: subjects once per term at the worst grade, any grade and >= 3."""
    app = app_for(settings_from_env())
    rows = run_app(app, lambda app: incidence_table(app.store, treatment_emergent_only=treatment_emergent))
    records = [asdict(r) for r in rows]
    if fmt == "json":
        click.echo(json.dumps(records, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=INCIDENCE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(format_incidence(records))


def format_incidence(records: list[dict[str, Any]]) -> str:
    if not records:
        return "No adverse events in the safety population yet."
    lines = [f"{'SOC':<46} {'PT':<36} {'band':>4} {'n':>4} {'N':>4} {'%':>6}"]
    for r in records:
        lines.append(
            f"{r['soc'][:46]:<46} {r['pt'][:36]:<36} {r['grade_band']:>4} {r['subjects']:>4} "
            f"{r['denominator']:>4} {r['percent']:>6.1f}"
        )
    return "\n".join(lines)


@cli.command()
@click.option(
    "--kind",
    type=click.Choice(list(DIGEST_PERIODS)),
    default="weekly",
    show_default=True,
    help="daily (medical monitors: the last day) or weekly (DSMB: the last 7 days), or since the last one sent.",
)
@click.option("--send", is_flag=True, help="Email it to DIGEST_RECIPIENTS (else ALERT_RECIPIENTS) and record it.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the HTML here.")
def digest(kind: str, send: bool, html_path: Path | None) -> None:
    """Render the safety digest (cumulative incidence, alerts since the last digest); print its text part."""
    settings = settings_from_env()
    recipients = settings.digest_recipients or settings.alert_recipients
    if send and not recipients:
        raise click.ClickException("--send needs DIGEST_RECIPIENTS or ALERT_RECIPIENTS")
    app = app_for(settings)

    async def work(app: App) -> str:
        now = app.clock.now()
        result = await build_digest(app.store, app.renderer, kind=kind, now=now)
        if html_path is not None:
            await asyncio.to_thread(_write_text, html_path, result.html)
        if send:
            await send_digest(
                app.store,
                app.mailer,
                result,
                kind=kind,
                recipients=recipients,
                sender=settings.mail_from,
                mail_domain=settings.mail_domain,
                now=now,
            )
        return result.text

    click.echo(run_app(app, work))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@cli.command()
@click.option("--type", "msg_type", type=click.Choice(["AE", "LB", "VS", "EG", "SUBJECT", "RS"]), default=None)
def schema(msg_type: str | None) -> None:
    """Print the JSON Schemas of the wire messages sites publish."""
    schemas = json_schemas()
    click.echo(json.dumps(schemas[msg_type] if msg_type else schemas, indent=2))


@cli.group()
def db() -> None:
    """Database administration."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to DATABASE_URL."""
    app = app_for(settings_from_env())
    run_app(app, _noop, create=True)
    click.echo(f"database at head: {app.settings.database_url}")


async def _noop(app: App) -> None:
    return None


@cli.command("dead-letters")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
def dead_letters(limit: int) -> None:
    """List dead-lettered messages with their reason, origin and how often each was received."""
    app = app_for(settings_from_env())

    async def work(app: App) -> list[str]:
        async with app.store() as uow:
            letters = await uow.dead_letters.list(limit)
        return [f"{letter.origin} (x{count}) {letter.reason}" for letter, count in letters]

    lines = run_app(app, work)
    click.echo("\n".join(lines) if lines else "no dead letters")


@cli.group()
def rules() -> None:
    """Safety rule files."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def rules_check(directory: Path | None) -> None:
    """Validate every rule file in DIRECTORY (default: the configured rules) and its routing.yaml; exit 1 on any
    error."""
    settings = settings_from_env()
    target = directory or settings.rules_dir
    errors: list[ConfigError] = []
    ruleset = routing = None
    try:
        ruleset = load_ruleset(target)
    except ConfigInvalid as exc:
        errors.extend(exc.errors)
    if (target / ROUTING_FILE).is_file():
        try:
            routing = load_routing(
                target / ROUTING_FILE, settings.templates_dir, deliverable=settings.mail_backend == "smtp"
            )
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
    if errors or ruleset is None:
        for error in errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(errors)} error(s) in {target}", err=True)
        sys.exit(1)
    click.echo(f"{len(ruleset.rules)} rules OK in {target} (ruleset {ruleset.content_hash[:12]})")
    if routing is None:
        click.echo("no routing.yaml: every alert goes to ALERT_RECIPIENTS at once")
    else:
        click.echo(
            f"routing OK: {len(routing.receivers)} receivers, {len(routing.inhibit_rules)} inhibit rules, "
            f"{len(routing.silences)} silences, {len(routing.digests)} digest schedules"
        )
        text = (target / ROUTING_FILE).read_text(encoding="utf-8")
        variables = sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)))
        if variables:
            click.echo(f"receivers' addresses (from {', '.join(variables)}):")
        for receiver in routing.receivers.values():
            placeholder = (
                " (placeholders: refused with MAIL_BACKEND=smtp)"
                if any(reserved_domain(e) for e in receiver.emails)
                else ""
            )
            click.echo(f"  {receiver.name}: {', '.join(receiver.emails)}{placeholder}")


rules.add_command(rules_test)
rules.add_command(rules_backtest)
rules.add_command(rules_reload)
cli.add_command(grades)
cli.add_command(sae)
cli.add_command(review)
cli.add_command(boundaries)


cli.add_command(demo)
cli.add_command(users)
cli.add_command(audit)
cli.add_command(serve)
cli.add_command(health)
cli.add_command(grade_labs)
cli.add_command(report)


def main() -> None:
    cli()
