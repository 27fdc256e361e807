"""Owns the `safety-monitor report` command: the DSMB safety report as of a data cut, as HTML or JSON."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from safety_monitor.bootstrap import App
from safety_monitor.cli.common import app_for, run_app, settings_from_env


def _day(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}", param=param) from None


def _json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: such a figure (a rate over no time at risk) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@click.command()
@click.option("--as-of", "as_of", callback=_day, help="Data cut YYYY-MM-DD (default: today, UTC).")
@click.option("--since", callback=_day, help="Start of 'new since the last report' (default: 7 days before the cut).")
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
def report(as_of: date | None, since: date | None, fmt: str, output: Path) -> None:
    """The DSMB safety report: population, exposure, AE tables and EAIR, serious AEs, deaths, alerts and
    boundaries, OS and PFS (Kaplan-Meier), ORR, with a methods section. HTML is one self-contained file."""
    # A --since after an explicit cut is refused before anything is opened; after today's cut, once the clock is read.
    if as_of is not None and since is not None and since > as_of:
        raise click.BadParameter(f"--since {since} is after the data cut {as_of}", param_hint="--since")
    app = app_for(settings_from_env())

    async def work(app: App) -> str:
        now = app.clock.now()
        cut = as_of or now.date()
        if since is not None and since > cut:
            raise click.BadParameter(f"--since {since} is after the data cut {cut}", param_hint="--since")
        figures = await app.report(as_of=cut, since=since)
        if fmt == "json":
            text = json.dumps(_json_safe(figures), indent=2, allow_nan=False) + "\n"
        else:
            text = await asyncio.to_thread(app.renderer.report_html, figures, _stamp(now))
        await asyncio.to_thread(output.write_text, text, "utf-8")
        return cut.isoformat()

    cut = run_app(app, work)
    click.echo(f"DSMB report, data cut {cut}: {output}")


def _stamp(now: datetime) -> str:
    return now.isoformat(timespec="seconds")
