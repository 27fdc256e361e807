"""Owns `safety-monitor health`: what an operator (or a cron job) asks of an embedded site: is every alert email
delivered, and is anything refused for good."""

from __future__ import annotations

import json
import sys

import click

from safety_monitor.bootstrap import App
from safety_monitor.cli.common import app_for, run_app, settings_from_env
from safety_monitor.service.views import DeliveryHealth, delivery_health


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def health(fmt: str) -> None:
    """Outbox health: counts, alert emails overdue (unsent 15 minutes after they were written; still retried)
    and recipients a mail server refused for good. Exit 1 when any email is overdue or undeliverable."""
    app = app_for(settings_from_env())

    async def work(app: App) -> DeliveryHealth:
        return await delivery_health(app.store, app.clock.now())

    report = run_app(app, work)
    if fmt == "json":
        click.echo(json.dumps({"status": report.status, "outbox": report.as_dict()}, indent=2))
    else:
        counts = report.counts
        click.echo(f"status: {report.status}")
        click.echo(f"outbox: {counts['sent']} sent, {counts['pending']} pending, {len(report.overdue)} overdue")
        for notice in report.overdue:
            click.echo(
                f"OVERDUE: alert email {notice.notice_id} for {notice.alert_key} unsent since "
                f"{notice.created_at.isoformat(timespec='minutes')} ({notice.attempts} attempts; still retrying): "
                f"{notice.last_error or 'not tried yet'}"
            )
        for notice, refused in report.undeliverable:
            for recipient, reply in sorted(refused.items()):
                click.echo(f"UNDELIVERABLE: alert email {notice.notice_id} refused for {recipient}: {reply}")
    if report.status != "ok":
        sys.exit(1)
