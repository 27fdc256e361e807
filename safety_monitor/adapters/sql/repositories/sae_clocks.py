"""Owns the SQL SAE clock repository: the reporting clock of each serious case under each rule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository
from safety_monitor.domain.conditions.deadline import ClockKey, SaeClock


def _clock(row: Any) -> SaeClock:
    return SaeClock(
        study_id=row.study_id,
        subject_id=row.subject_id,
        ae_spid=row.aespid,
        rule_id=row.rule_id,
        started_at=row.started_at,
        start_msg_id=row.start_msg_id,
        short_known_at=row.short_known_at,
        reminders_sent=row.reminders_sent,
        overdue_sent=bool(row.overdue_sent),
        closed_at=row.closed_at,
        closed_reason=row.closed_reason,
    )


class SqlSaeClockRepository(SqlRepository):
    async def get(self, keys: Iterable[tuple[str, ClockKey]]) -> dict[tuple[str, ClockKey], SaeClock]:
        flat = {(rule_id, *case) for rule_id, case in keys}
        rows = await self._select_by_keys(t.sae_clock, ("rule_id", "study_id", "subject_id", "aespid"), flat)
        clocks = [_clock(row) for row in rows]
        return {(clock.rule_id, clock.key): clock for clock in clocks}

    async def put(self, clocks: Sequence[SaeClock]) -> None:
        rows = [
            {
                "rule_id": k.rule_id,
                "study_id": k.study_id,
                "subject_id": k.subject_id,
                "aespid": k.ae_spid,
                "started_at": k.started_at,
                "start_msg_id": k.start_msg_id,
                "short_known_at": k.short_known_at,
                "reminders_sent": k.reminders_sent,
                "overdue_sent": k.overdue_sent,
                "closed_at": k.closed_at,
                "closed_reason": k.closed_reason,
            }
            for k in clocks
        ]
        await self._upsert(t.sae_clock, rows, ["rule_id", "study_id", "subject_id", "aespid"])

    async def open(self) -> list[SaeClock]:
        c = t.sae_clock.c
        query = select(t.sae_clock).where(c.closed_at.is_(None)).order_by(c.started_at, c.rule_id, c.aespid)
        return [_clock(row) for row in await self.conn.execute(query)]

    async def for_case(self, key: ClockKey) -> list[SaeClock]:
        c = t.sae_clock.c
        query = (
            select(t.sae_clock)
            .where(c.study_id == key[0], c.subject_id == key[1], c.aespid == key[2])
            .order_by(c.rule_id)
        )
        return [_clock(row) for row in await self.conn.execute(query)]
