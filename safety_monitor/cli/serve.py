"""Owns `safety-monitor serve`: the embedded runtime as a long-running single-site service (inbox, scheduler)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from pathlib import Path

import click

from safety_monitor.bootstrap import App
from safety_monitor.cli.common import alerting_settings_from_env, app_for, pid_file_option
from safety_monitor.cli.site_lock import SiteLock, SiteLocked, holder_is_dead
from safety_monitor.service.reload import install_sighup_reload
from safety_monitor.service.scheduler import release_dead_holders, running
from streams.embedded import InboxDirectory, InboxFile, watch_inbox

log = logging.getLogger(__name__)


@click.command()
@pid_file_option("Where the process id is written (what `rules reload` signals).")
def serve(pid_file: Path) -> None:
    """Run the embedded runtime as a service, one process per site: process the wire JSONL files dropped into
    SAFETY_MONITOR_INBOX_DIR (default var/inbox), run the scheduled work (routed delivery and retries, reminders,
    digests, the SAE reporting clock), reload rules and routing on SIGHUP, stop on SIGTERM or Ctrl-C after
    committing the batch in hand.

    Drop files by writing them under another name in the inbox directory and renaming them to NAME.jsonl: a file
    appears complete or not at all. Processed files move to processed/, unreadable ones to rejected/.
    """
    settings = alerting_settings_from_env()
    app = app_for(settings)
    lock = SiteLock.for_site(settings.inbox_dir, settings.database_url)
    try:
        lock.acquire()
    except SiteLocked as exc:
        raise click.ClickException(str(exc)) from None
    try:
        # The inbox exists before the pid file does: a site (or a supervisor) that sees the pid file can drop files.
        InboxDirectory(settings.inbox_dir).prepare()
        _claim_pid_file(pid_file)
        try:
            asyncio.run(_serve(app))
        finally:
            pid_file.unlink(missing_ok=True)
    finally:
        lock.release()


def _claim_pid_file(pid_file: Path) -> None:
    """One embedded process per site: refuse to start beside a live one (two would read the same inbox)."""
    with contextlib.suppress(OSError, ValueError):
        other = int(pid_file.read_text().strip())
        if other != os.getpid() and _alive(other):
            raise click.ClickException(f"another process (pid {other}, {pid_file}) is already running here")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _serve(app: App) -> None:
    settings = app.settings
    inbox = InboxDirectory(settings.inbox_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await app.start()  # migrations
        # This process holds the site lock: a lease held by a serve of this host that no longer runs is
        # released now rather than waited out.
        for holder in await release_dead_holders(app.store, app.clock.now(), holder_is_dead):
            log.warning("released the leases of %s: that process is no longer running", holder)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        install_sighup_reload(app.configuration_holder(), app.clock)
        config = app.configuration
        click.echo(
            f"serving: inbox {inbox.root}, database {settings.database_url}, ruleset {config.ruleset_hash[:12]}, "
            f"routing {config.routing_hash[:12] or '(none: ALERT_RECIPIENTS)'}; pid {os.getpid()}"
        )
        holder = f"{socket.gethostname()}:{os.getpid()}:serve"
        async with running(app.scheduler(holder)):
            await watch_inbox(app, inbox, stop, poll=settings.inbox_poll, on_file=_report)
        click.echo("stopped: the batch in hand was committed; files not finished stay in the inbox")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await app.close()


def _report(done: InboxFile) -> None:
    if done.summary is None:
        click.echo(f"inbox: {done.name}: rejected ({done.reason})", err=True)
        return
    o = done.summary.outcome
    alerts = ", ".join(f"{k}: {v}" for k, v in sorted(o.alerts_by_rule.items())) or "none"
    where = f"-> {done.moved_to}" if done.moved_to else "stopped part-way; left in the inbox"
    clocks = done.summary.deadlines
    overdue = f"; reporting clocks now overdue: {clocks.overdue}" if clocks.overdue else ""
    click.echo(
        f"inbox: {done.name}: {o.received} messages ({o.applied} applied, {o.duplicates} duplicates, "
        f"{o.stale} stale follow-ups, {o.dead_lettered} dead-lettered); alerts raised: {alerts}{overdue}; "
        f"notices written: {o.notices} (emailed by the delivery pass when their group is due); {where}"
    )
