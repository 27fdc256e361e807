"""Owns the in-memory review actions (append-only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from safety_monitor.adapters.memory.state import MemoryRepository
from safety_monitor.domain.review import ReviewAction


class MemoryReviewActions(MemoryRepository):
    """Append-only, like the SQL table: there is no way to change or remove an action once added."""

    async def add(self, actions: Sequence[ReviewAction]) -> None:
        self.s.review_actions.extend(actions)

    async def for_alerts(self, keys: Iterable[str]) -> dict[str, list[ReviewAction]]:
        wanted = set(keys)
        found: dict[str, list[ReviewAction]] = {}
        for action in self.s.review_actions:
            if action.alert_key in wanted:
                found.setdefault(action.alert_key, []).append(action)
        return found

    async def last_at(self, reviewer: str | None = None) -> datetime | None:
        times = [a.at for a in self.s.review_actions if reviewer is None or a.reviewer == reviewer]
        return max(times, default=None)

    async def every(self) -> list[ReviewAction]:
        return list(self.s.review_actions)
