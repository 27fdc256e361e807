"""Owns what the commands share: settings from the environment, running an app, the run summary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.ruleset.errors import ConfigInvalid
from safety_monitor.service.delivery import DeliveryReport
from safety_monitor.settings import PID_FILE, Settings, SettingsError
from streams.embedded import RunSummary

T = TypeVar("T")


def settings_from_env() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def alerting_settings_from_env() -> Settings:
    """Settings for a command that processes messages: someone must hear the alerts (routing or recipients)."""
    settings = settings_from_env()
    try:
        settings.require_recipients()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def pid_file_option(help_text: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """`--pid-file`: the long-running process's pid file (what `rules reload` signals)."""
    return click.option(
        "--pid-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=PID_FILE,
        show_default=True,
        help=help_text,
    )


# The command-line review commands act as an account of the users table, named with `--as`; the role is the
# account's, never one claimed on the command line, and a disabled account is refused. The command line does not
# ask for the password: whoever runs it holds DATABASE_URL, which already lets them write any table, so a password
# prompt would protect nothing that the database credentials do not. What `--as` gives is that every action names a
# real, active account in its role (and the audit log records it), as the web workspace's actions do.
as_user_option = click.option(
    "--as",
    "user_name",
    required=True,
    metavar="NAME",
    help="The workspace account you act as (see `safety-monitor users list`); its role applies.",
)


def run_app(app: App, work: Callable[[App], Awaitable[T]], *, create: bool = False) -> T:
    """Run `work` on a started app. Only commands that take in data (`create`: demo, replay, serve, db upgrade)
    create the database or migrate it; the others refuse a missing one (DatabaseNotReady) and create nothing."""

    async def main() -> T:
        try:
            await app.start(create=create)
            return await work(app)
        finally:
            await app.close()

    return asyncio.run(main())


def app_for(settings: Settings) -> App:
    try:
        return bootstrap(settings)
    except ConfigInvalid as exc:
        raise click.ClickException(f"the rules do not load:\n{exc}") from None


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def print_summary(summary: RunSummary) -> None:
    """What a run did to the messages it read; the parts add up to the messages processed."""
    o = summary.outcome
    click.echo(f"messages processed:   {o.received} in {summary.seconds:.2f} s ({summary.rate:,.0f} msg/s)")
    click.echo(f"  applied:            {o.applied}")
    click.echo(f"  duplicates skipped: {o.duplicates}")
    click.echo(f"  stale follow-ups:   {o.stale} (record_version not above the current one; kept in history)")
    click.echo(f"  dead-lettered:      {o.dead_lettered} ({o.conflicts} of them msg_id conflicts)")
    for reason in o.dead_letter_reasons:
        click.echo(f"    - {reason}")
    click.echo(f"rule hits:            {o.hits}")
    click.echo(
        "alerts raised:        " + (", ".join(f"{k}: {v}" for k, v in sorted(o.alerts_by_rule.items())) or "none")
    )
    d = summary.deadlines
    if d.overdue or d.reminders:
        click.echo(f"reporting clocks:     {d.overdue} now OVERDUE (escalated), {d.reminders} reminder(s) due")
    click.echo(f"notices written:      {o.notices} (one per alert change and receiver)")


def print_delivery(report: DeliveryReport | None, outbox: dict[str, int], settings: Settings) -> str | None:
    """Emails sent now, what waits and until when, what failed; returns the one-line failure to exit with."""
    if report is None:
        click.echo("emails sent:          none (--no-deliver): `safety-monitor deliver` sends them")
    else:
        click.echo(f"emails sent:          {report.sent}; failed now: {report.failed} (kept, retried with backoff)")
        flushed = report.flushed
        if flushed is not None and flushed.waiting:
            due = f", the first at {_when(flushed.next_due_at)}" if flushed.next_due_at else ""
            click.echo(
                f"  waiting:            {flushed.waiting} notice(s) in their group's group_wait / group_interval"
                f"{due}: `safety-monitor deliver` then, or a running `serve` / `worker`, emails them"
            )
        if flushed is not None:
            click.echo(f"  held:               {flushed.held} by silences / inhibit rules (sent once released)")
    click.echo(
        f"outbox:               {outbox['sent']} sent in all, {outbox['pending']} to send or retry"
        + (f", {outbox['failed']} given up" if outbox["failed"] else "")
    )
    if report is None or not report.failed:
        return None
    where = (
        settings.mail_capture_dir
        if settings.mail_backend == "capture"
        else (f"SMTP_HOST={settings.smtp_host} SMTP_PORT={settings.smtp_port}")
    )
    return (
        f"{report.failed} email(s) could not be sent ({where}: {report.last_error}); the data is committed and "
        "the emails stay in the outbox: fix the mail server settings, then `safety-monitor deliver` sends them"
    )
