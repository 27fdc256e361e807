"""Owns hot reload of the configuration: rules and routing swapped in together only when both load, and SIGHUP.

The rule files decide what is a signal and the routing file who hears it; a reload reads both as one snapshot,
so a process never runs new rules with old routing or the reverse. A failed reload keeps the last good snapshot
in force and says why, every error with its file and line (docs/architecture.md, "Rules and routing"): a broken file
must never leave
a running process without rules or without anybody to hear its alerts. Long-running processes call
`install_sighup_reload` once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from safety_monitor.domain.routing import Routing
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.ports import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Configuration:
    """One snapshot of what a runtime acts on: the ruleset and the routing file (None: there is no routing file,
    every alert goes to ALERT_RECIPIENTS at once)."""

    ruleset: Ruleset
    routing: Routing | None = None

    @property
    def ruleset_hash(self) -> str:
        return self.ruleset.content_hash

    @property
    def routing_hash(self) -> str:
        """The routing file's content hash; "" when no routing file is in force."""
        return self.routing.content_hash if self.routing is not None else ""


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    ruleset_hash: str  # the ruleset in force after the attempt
    routing_hash: str  # the routing in force after the attempt ("" when there is no routing file)
    changed: bool
    error: str = ""  # why the new files were refused (every config error, one per line)

    def describe(self) -> str:
        """One line for logs and operators: what is in force now, and why a refused reload was refused."""
        in_force = f"ruleset {self.ruleset_hash[:12]}, routing {self.routing_hash[:12] or '(none)'}"
        if not self.ok:
            return f"reload refused; keeping {in_force}:\n{self.error}"
        return f"reloaded: {in_force}" + ("" if self.changed else " (unchanged)")


@dataclass
class ConfigurationHolder:
    """The configuration in force. `load` reads and validates rules and routing together (raising with every
    error of both on failure); `on_change` is told about each new snapshot (e.g. to swap it into the running
    pipeline, which the scheduled jobs read at each run)."""

    current: Configuration
    load: Callable[[], Configuration]
    on_change: Callable[[Configuration], None] | None = None
    last_error: str = ""
    history: list[tuple[datetime | None, ReloadResult]] = field(default_factory=list)

    @property
    def ruleset(self) -> Ruleset:
        return self.current.ruleset

    @property
    def routing(self) -> Routing | None:
        return self.current.routing

    def reload(self, at: datetime | None = None) -> ReloadResult:
        try:
            candidate = self.load()
        except Exception as exc:  # any failure to load keeps the last good snapshot: that is the point
            self.last_error = str(exc) or type(exc).__name__
            old = self.current
            result = ReloadResult(False, old.ruleset_hash, old.routing_hash, False, self.last_error)
            log.error(
                "configuration reload refused; keeping ruleset=%s routing=%s: %s",
                old.ruleset_hash[:12],
                old.routing_hash[:12] or "(none)",
                self.last_error,
            )
        else:
            old = self.current
            changed = (candidate.ruleset_hash, candidate.routing_hash) != (old.ruleset_hash, old.routing_hash)
            self.current, self.last_error = candidate, ""
            if changed and self.on_change is not None:
                self.on_change(candidate)
            result = ReloadResult(True, candidate.ruleset_hash, candidate.routing_hash, changed)
            log.warning(
                "configuration reloaded ruleset=%s routing=%s changed=%s rules=%d digest_schedules=%d",
                candidate.ruleset_hash[:12],
                candidate.routing_hash[:12] or "(none)",
                changed,
                len(candidate.ruleset.rules),
                len(candidate.routing.digests) if candidate.routing is not None else 0,
            )
        self.history = [*self.history, (at, result)][-20:]
        return result


def install_sighup_reload(
    holder: ConfigurationHolder, clock: Clock | None = None, loop: asyncio.AbstractEventLoop | None = None
) -> None:
    """Reload rules and routing on SIGHUP (Unix), in the event loop's thread, so a batch or a scheduled job never
    sees half a swap: each reads the snapshot in force when it starts. `clock` dates the reload in `history`."""
    target = loop or asyncio.get_running_loop()
    target.add_signal_handler(signal.SIGHUP, lambda: holder.reload(clock.now() if clock is not None else None))
