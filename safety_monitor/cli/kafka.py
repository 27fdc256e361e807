"""Owns the Kafka commands: `worker` (the Faust runtime), `publish` (validated wire messages), `topics create`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from safety_monitor.cli.common import alerting_settings_from_env, app_for
from safety_monitor.settings import SettingsError
from streams.embedded import file_source
from streams.topics import KafkaSettings, TopicsNotReady, check_topics, create_topics


def kafka_settings() -> KafkaSettings:
    try:
        return KafkaSettings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--loglevel", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
def worker(loglevel: str) -> None:
    """Run a Kafka worker: consume the inbound topics, handle batches, alert, deliver (until SIGTERM).

    Reads KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC_*, KAFKA_PARTITIONS, KAFKA_APP_ID (the consumer group),
    WORKER_WEB_HOST / WORKER_WEB_PORT (health at /health/) besides the usual DATABASE_URL, SMTP_* and rules.
    """
    from streams.kafka_app import run_worker  # imports faust: only the worker needs it

    settings = alerting_settings_from_env()
    kafka = kafka_settings()
    try:
        check_topics(kafka)
    except TopicsNotReady as exc:
        raise click.ClickException(str(exc)) from None
    run_worker(app_for(settings), kafka, loglevel=loglevel)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--send-invalid", is_flag=True, help="Send refused messages too (to exercise the dead-letter path).")
def publish(file: Path, send_invalid: bool) -> None:
    """Validate the wire messages in FILE (JSONL) and publish them, each to the topic of its msg_type."""
    from streams.publish import publish_lines

    kafka = kafka_settings()
    _quiet_client_logs()
    report = publish_lines(kafka, file_source(file), send_invalid=send_invalid)
    for origin, reason in report.refused:
        click.echo(f"refused {origin}: {reason}", err=True)
    by_topic = ", ".join(f"{topic}: {count}" for topic, count in sorted(report.by_topic.items())) or "none"
    click.echo(f"published {report.sent} message(s) ({by_topic}); refused {len(report.refused)}")
    if report.refused and not send_invalid:
        sys.exit(1)


def _quiet_client_logs() -> None:
    """kafka-python logs every failed connection attempt as an ERROR; an unreachable broker ends in one line
    (cli/failures.py) instead, and `--verbose` brings the client's log back."""
    if not click.get_current_context().meta.get("safety_monitor.verbose"):
        logging.getLogger("kafka").setLevel(logging.CRITICAL)


@click.group()
def topics() -> None:
    """Kafka topics (never auto-created: the inbound topics must be co-partitioned)."""


@topics.command("create")
def topics_create() -> None:
    """Create the inbound, alert and dead-letter topics with KAFKA_PARTITIONS partitions (idempotent)."""
    kafka = kafka_settings()
    _quiet_client_logs()
    try:
        report = create_topics(kafka)
    except TopicsNotReady as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"topics ready on {kafka.bootstrap_servers} ({kafka.partitions} partitions): "
        f"created {', '.join(report.created) or 'none'}; already there {', '.join(report.existing) or 'none'}"
    )
