"""Owns hot reload of the ruleset: a holder that swaps in a new ruleset only when it loads, and SIGHUP wiring.

A failed reload keeps the last good ruleset in force and says why (DESIGN.md section 6): a broken rule file must
never leave a running worker without rules. Long-running processes call `install_sighup_reload` once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from safety_monitor.domain.rules import Ruleset

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    content_hash: str  # the ruleset in force after the attempt
    changed: bool
    error: str = ""  # why the new files were refused (every config error, one per line)


@dataclass
class RulesetHolder:
    """The ruleset in force. `load` reads and validates the rule files (raising with every error on failure);
    `on_change` is told about each new ruleset (e.g. to swap it into the running pipeline's config)."""

    ruleset: Ruleset
    load: Callable[[], Ruleset]
    on_change: Callable[[Ruleset], None] | None = None
    last_error: str = ""
    history: list[tuple[datetime | None, ReloadResult]] = field(default_factory=list)

    def reload(self, at: datetime | None = None) -> ReloadResult:
        try:
            candidate = self.load()
        except Exception as exc:  # any failure to load keeps the last good ruleset: that is the point
            self.last_error = str(exc) or type(exc).__name__
            result = ReloadResult(False, self.ruleset.content_hash, False, self.last_error)
            log.error("rules reload refused; keeping ruleset %s: %s", self.ruleset.content_hash[:12], self.last_error)
        else:
            changed = candidate.content_hash != self.ruleset.content_hash
            self.ruleset, self.last_error = candidate, ""
            if changed and self.on_change is not None:
                self.on_change(candidate)
            result = ReloadResult(True, candidate.content_hash, changed)
            log.warning(
                "rules reloaded ruleset=%s changed=%s rules=%d",
                candidate.content_hash[:12],
                changed,
                len(candidate.rules),
            )
        self.history = [*self.history, (at, result)][-20:]
        return result


def install_sighup_reload(holder: RulesetHolder, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Reload the rules on SIGHUP (Unix), in the event loop's thread, so a batch never sees half a swap."""
    target = loop or asyncio.get_running_loop()
    target.add_signal_handler(signal.SIGHUP, holder.reload)
