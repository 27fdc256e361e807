"""Owns `safety-monitor demo`: generate the synthetic trial and replay it through the embedded runtime."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from safety_monitor.bootstrap import App
from safety_monitor.cli.common import app_for, print_delivery, print_summary, run_app, settings_from_env
from safety_monitor.demo import generate_trial, write_jsonl
from safety_monitor.domain.access import Role
from safety_monitor.service.accounts import add_user, list_users
from safety_monitor.service.digests import build_digest
from streams.embedded import replay_file

DEMO_RECIPIENTS = ("dsmb@example.org", "medical-monitor@example.org")
# The demo's workspace accounts: one per role, with passwords printed for the demo only (a real deployment adds
# its users with `safety-monitor users add NAME --role ROLE --password-stdin`).
DEMO_USERS = (
    ("monitor", Role.MEDICAL_MONITOR, "demo-monitor-password"),
    ("dsmb", Role.DSMB_MEMBER, "demo-dsmb-password"),
    ("admin", Role.ADMIN, "demo-admin-password"),
)


async def demo_users(app: App) -> list[str]:
    """Add the demo accounts that are missing (a second demo run keeps the first one's); the lines to print."""
    existing = {user.name for user in await list_users(app.store)}
    lines = []
    for name, role, password in DEMO_USERS:
        if name not in existing:
            await add_user(app.store, app.hasher, name, role, password, at=app.clock.now())
        lines.append(f"  {name:<8} password {password:<22} ({role.value})")
    return lines


@click.command()
@click.option("--seed", type=int, default=20260302, show_default=True, help="Seed of the synthetic trial.")
@click.option("--subjects", type=click.IntRange(20, 5000), default=60, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/demo"),
    show_default=True,
    help="Where the trial file and the digest are written.",
)
def demo(seed: int, subjects: int, out: Path) -> None:
    """Replay a bundled synthetic trial (about 60 subjects over 3 months) end to end, on embedded defaults.

    No Kafka, SQLite at DATABASE_URL (default var/safety-monitor.db), mail captured as .eml files in
    MAIL_CAPTURE_DIR (default var/mail). Running it again changes nothing: every message is a duplicate.
    """
    settings = settings_from_env()
    if not settings.alert_recipients:
        settings = replace(settings, alert_recipients=DEMO_RECIPIENTS)
    trial = generate_trial(seed=seed, subjects=subjects)
    out.mkdir(parents=True, exist_ok=True)
    trial_file = out / "trial.jsonl"
    write_jsonl(trial_file, trial.lines)
    app = app_for(settings)

    async def work(app: App) -> str | None:
        summary = await replay_file(app, trial_file)
        # Months of trial replayed in seconds: email every waiting group now rather than after its group_wait.
        report = await app.deliver(ignore_waits=True)
        digest = await build_digest(app.store, app.renderer, kind="weekly", now=app.clock.now())
        (out / "digest.html").write_text(digest.html, encoding="utf-8")
        (out / "digest.txt").write_text(digest.text, encoding="utf-8")
        # The DSMB report at the trial's last day; the first report of the trial, so everything is new since its start.
        figures = await app.report(as_of=trial.last_day, since=trial.first_day)
        (out / "report.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        (out / "report.html").write_text(
            app.renderer.report_html(figures, app.clock.now().isoformat(timespec="seconds")), encoding="utf-8"
        )
        async with app.store() as uow:
            alerts = await uow.alerts.count_by_rule()
            outbox = await uow.outbox.counts()
            population = await uow.subjects.safety_population()
            awaiting = await uow.adverse_events.unknown_subject_count()
        click.echo(f"synthetic trial:      {len(trial.lines)} lines, seed {seed}, {trial_file}")
        print_summary(summary)
        failure = print_delivery(report, outbox, settings)
        click.echo("")
        click.echo("in the database now:")
        click.echo(f"  safety population:  {len(population)} subjects dosed")
        click.echo(f"  AEs awaiting their subject's registration: {awaiting} (alerted on; counted once dosed)")
        click.echo("  open alerts by rule: " + ", ".join(f"{k}: {v}" for k, v in sorted(alerts.items())))
        click.echo("")
        mail_where = settings.mail_capture_dir if settings.mail_backend == "capture" else settings.smtp_host
        click.echo(f"mail ({settings.mail_backend}): {mail_where}")
        click.echo(f"digest:   {out / 'digest.html'} and {out / 'digest.txt'}")
        click.echo(
            f"report:   {out / 'report.html'} and {out / 'report.json'} (DSMB safety report, data cut {trial.last_day})"
        )
        click.echo(f"database: {settings.database_url}")
        users = await demo_users(app)
        click.echo("next:     .venv/bin/safety-monitor incidence")
        click.echo("")
        click.echo("review workspace: .venv/bin/safety-monitor web   then open http://127.0.0.1:8000/login")
        click.echo("demo accounts (for the demo only):")
        for line in users:
            click.echo(line)
        return failure

    failure = run_app(app, work, create=True)
    if failure:
        raise click.ClickException(failure)
