"""Owns `safety-monitor web`: the review workspace (pages and API) served by uvicorn."""

from __future__ import annotations

from pathlib import Path

import click
import uvicorn

from safety_monitor.cli.common import app_for, settings_from_env
from safety_monitor.cli.kafka import kafka_settings
from safety_monitor.web.app import create_app
from streams.site_sink import KafkaSink


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option(
    "--publish-to",
    type=click.Choice(["embedded", "kafka"]),
    default="embedded",
    show_default=True,
    help="Where sites' POST /api/v1/messages go: the pipeline on DATABASE_URL (committed before the answer) or "
    "the inbound Kafka topics (KAFKA_* variables; acks=all before the answer) for the `worker`s.",
)
def web(host: str, port: int, ssl_certfile: Path | None, ssl_keyfile: Path | None, publish_to: str) -> None:
    """Serve the review workspace on DATABASE_URL: log in, work the alert queue, review alerts, read subjects,
    eDISH, SAE clocks and incidence; the same rights over the API (/api/v1, bearer tokens). Site accounts publish
    their messages with POST /api/v1/messages.

    Cookies are marked Secure when the request came over TLS: served here with --ssl-certfile/--ssl-keyfile, or
    behind a reverse proxy on this host that sends X-Forwarded-Proto (uvicorn trusts 127.0.0.1 for it).
    """
    settings = settings_from_env()
    app = app_for(settings)
    if app.reads is None:
        raise click.ClickException("the workspace needs a SQL database (DATABASE_URL)")
    sink = KafkaSink(kafka_settings(), app.store) if publish_to == "kafka" else None
    workspace = create_app(app, sink=sink)
    click.echo(
        f"review workspace on http{'s' if ssl_certfile else ''}://{host}:{port} (PUBLIC_URL {settings.public_url})"
    )
    uvicorn.run(
        workspace,
        host=host,
        port=port,
        proxy_headers=True,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        log_level="info",
        access_log=False,  # an access log would carry subject ids in URLs; errors are still logged
    )
