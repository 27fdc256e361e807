"""Owns the SQL outbox repository: the notices to send, their attempts and each recipient's outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository
from safety_monitor.service.records import (
    Notice,
)


def _notice(row: Any) -> Notice:
    return Notice(
        notice_id=row.notice_id,
        alert_key=row.alert_key,
        kind=row.kind,
        recipients=tuple(row.recipients),
        context=dict(row.context),
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        recipient_outcomes=dict(row.recipient_outcomes or {}),
    )


class SqlOutboxRepository(SqlRepository):
    async def add(self, notices: Sequence[Notice]) -> None:
        rows = [
            {
                "notice_id": n.notice_id,
                "alert_key": n.alert_key,
                "kind": n.kind,
                "recipients": list(n.recipients),
                "context": n.context,
                "created_at": n.created_at,
                "attempts": n.attempts,
                "next_attempt_at": n.next_attempt_at,
                "sent_at": n.sent_at,
                "last_error": n.last_error,
                "recipient_outcomes": dict(n.recipient_outcomes) or None,
            }
            for n in notices
        ]
        await self._insert_ignore(t.outbox, rows, ["notice_id"])

    async def due(self, now: datetime, limit: int) -> list[Notice]:
        c = t.outbox.c
        query = (
            select(t.outbox)
            .where(c.sent_at.is_(None), or_(c.attempts == 0, c.next_attempt_at <= now))
            .order_by(c.created_at, c.notice_id)
            .limit(limit)
        )
        return [_notice(row) for row in await self.conn.execute(query)]

    async def mark_sent(self, notice_id: str, at: datetime, outcomes: Mapping[str, str] | None = None) -> None:
        c = t.outbox.c
        values: dict[str, Any] = {"sent_at": at, "attempts": c.attempts + 1, "last_error": None}
        values["next_attempt_at"] = None
        if outcomes is not None:
            values["recipient_outcomes"] = dict(outcomes)
        await self.conn.execute(update(t.outbox).where(c.notice_id == notice_id).values(**values))

    async def mark_failed(
        self, notice_id: str, error: str, next_attempt_at: datetime, outcomes: Mapping[str, str] | None = None
    ) -> None:
        c = t.outbox.c
        values: dict[str, Any] = {"attempts": c.attempts + 1, "last_error": error, "next_attempt_at": next_attempt_at}
        if outcomes is not None:
            values["recipient_outcomes"] = dict(outcomes)
        await self.conn.execute(update(t.outbox).where(c.notice_id == notice_id).values(**values))

    async def unsent_since(self, before: datetime, limit: int) -> list[Notice]:
        c = t.outbox.c
        query = (
            select(t.outbox)
            .where(c.sent_at.is_(None), c.created_at <= before)
            .order_by(c.created_at, c.notice_id)
            .limit(limit)
        )
        return [_notice(row) for row in await self.conn.execute(query)]

    async def undeliverable(self, limit: int) -> list[Notice]:
        # Few rows have outcomes other than "delivered": read the rows with any and filter here (JSON queries
        # differ between the two databases).
        c = t.outbox.c
        query = select(t.outbox).where(c.recipient_outcomes.is_not(None)).order_by(c.created_at.desc())
        found = [n for n in (_notice(row) for row in await self.conn.execute(query)) if n.undeliverable]
        return found[:limit]

    async def counts(self) -> dict[str, int]:
        c = t.outbox.c
        result = await self.conn.execute(
            select(
                func.count().filter(c.sent_at.is_not(None)),
                func.count().filter(c.sent_at.is_(None), or_(c.attempts == 0, c.next_attempt_at.is_not(None))),
                func.count().filter(c.sent_at.is_(None), c.attempts > 0, c.next_attempt_at.is_(None)),
            )
        )
        sent, pending, failed = result.one()
        return {"sent": int(sent), "pending": int(pending), "failed": int(failed)}
