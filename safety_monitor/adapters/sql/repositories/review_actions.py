"""Owns the SQL review action repository: the append-only record of what reviewers did to alerts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, as_utc, chunks
from safety_monitor.domain.access import Role
from safety_monitor.domain.review import ActionKind, ClockEffect, ReviewAction


def _review_action(row: Any) -> ReviewAction:
    return ReviewAction(
        alert_key=row.alert_key,
        kind=ActionKind(row.kind),
        reviewer=row.reviewer,
        role=Role(row.role),
        reason=row.reason,
        at=row.at,
        old_value=row.old_value,
        new_value=row.new_value,
        drug=row.drug,
        duplicate_of=row.duplicate_of,
        clock_effect=ClockEffect(row.clock_effect) if row.clock_effect else None,
        clock_reason=row.clock_reason,
    )


class SqlReviewActionRepository(SqlRepository):
    """INSERT and SELECT only: the table is append-only (its triggers refuse UPDATE and DELETE)."""

    async def add(self, actions: Sequence[ReviewAction]) -> None:
        rows = [
            {
                "alert_key": a.alert_key,
                "kind": a.kind.value,
                "reviewer": a.reviewer,
                "role": a.role.value,
                "reason": a.reason,
                "at": a.at,
                "drug": a.drug,
                "old_value": a.old_value,
                "new_value": a.new_value,
                "duplicate_of": a.duplicate_of,
                "clock_effect": a.clock_effect.value if a.clock_effect else None,
                "clock_reason": a.clock_reason,
            }
            for a in actions
        ]
        if rows:
            await self.conn.execute(insert(t.review_actions), rows)

    async def for_alerts(self, keys: Iterable[str]) -> dict[str, list[ReviewAction]]:
        c = t.review_actions.c
        found: dict[str, list[ReviewAction]] = {}
        for chunk in chunks(sorted(set(keys))):
            query = select(t.review_actions).where(c.alert_key.in_(chunk)).order_by(c.id)
            for row in await self.conn.execute(query):
                found.setdefault(row.alert_key, []).append(_review_action(row))
        return found

    async def last_at(self, reviewer: str | None = None) -> datetime | None:
        c = t.review_actions.c
        query = select(func.max(c.at))
        if reviewer is not None:
            query = query.where(c.reviewer == reviewer)
        value = (await self.conn.execute(query)).scalar()
        return as_utc(value) if value is not None else None

    async def every(self) -> list[ReviewAction]:
        rows = await self.conn.execute(select(t.review_actions).order_by(t.review_actions.c.id))
        return [_review_action(row) for row in rows]
