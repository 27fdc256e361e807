"""Owns the SQL repositories of the scheduled jobs: the digest log and the job leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, as_utc
from safety_monitor.service.ports import LeaseState


class SqlDigestLog(SqlRepository):
    async def last_sent(self, kind: str) -> datetime | None:
        result = await self.conn.execute(select(func.max(t.digest_run.c.sent_at)).where(t.digest_run.c.kind == kind))
        value = result.scalar_one_or_none()
        return as_utc(value) if value is not None else None

    async def record_sent(self, kind: str, at: datetime, recipients: Sequence[str]) -> None:
        await self.conn.execute(insert(t.digest_run).values(kind=kind, sent_at=at, recipients=list(recipients)))


class SqlLeaseRepository(SqlRepository):
    async def claim(self, job: str, slot: int, holder: str, now: datetime, held_until: datetime) -> bool:
        c = t.job_lease.c
        # The row exists once per job; the conditional UPDATE is the atomic claim (PostgreSQL re-checks the
        # WHERE clause on the locked row, SQLite has a single writer). A run still held blocks the next slot:
        # a job never overlaps itself across workers.
        await self._insert_ignore(
            t.job_lease, [{"job": job, "slot": -1, "holder": "", "held_until": now, "done_at": now}], ["job"]
        )
        result = await self.conn.execute(
            update(t.job_lease)
            .where(
                c.job == job,
                or_(
                    and_(c.slot < slot, or_(c.done_at.is_not(None), c.held_until < now)),
                    and_(c.slot == slot, c.done_at.is_(None), c.held_until < now),
                ),
            )
            .values(slot=slot, holder=holder, held_until=held_until, done_at=None)
        )
        return bool(result.rowcount == 1)

    async def complete(self, job: str, slot: int, holder: str, at: datetime) -> None:
        c = t.job_lease.c
        await self.conn.execute(
            update(t.job_lease).where(c.job == job, c.slot == slot, c.holder == holder).values(done_at=at)
        )

    async def release(self, job: str, holder: str, at: datetime) -> None:
        c = t.job_lease.c
        await self.conn.execute(
            update(t.job_lease)
            .where(c.job == job, c.holder == holder, c.done_at.is_(None))
            .values(held_until=at - timedelta(seconds=1))
        )

    async def states(self) -> list[LeaseState]:
        result = await self.conn.execute(select(t.job_lease).order_by(t.job_lease.c.job))
        return [LeaseState(r.job, r.slot, r.holder, r.held_until, r.done_at) for r in result]
