"""Owns the SQL inbox (every message received, by msg_id) and the dead letters (what could not be read)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import insert, select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, chunks
from safety_monitor.service.records import (
    DeadLetter,
    InboxEntry,
)


class SqlInboxRepository(SqlRepository):
    async def content_hashes(self, msg_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in chunks(list(msg_ids)):
            result = await self.conn.execute(
                select(t.inbox.c.msg_id, t.inbox.c.content_hash).where(t.inbox.c.msg_id.in_(chunk))
            )
            found.update({row.msg_id: row.content_hash for row in result})
        return found

    async def payloads(self, msg_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in chunks(list(msg_ids)):
            result = await self.conn.execute(
                select(t.inbox.c.msg_id, t.inbox.c.payload).where(t.inbox.c.msg_id.in_(chunk))
            )
            found.update({row.msg_id: row.payload for row in result})
        return found

    async def add(self, entries: Sequence[InboxEntry]) -> None:
        # A plain INSERT: a concurrent worker that took the same msg_id makes this transaction fail and the
        # batch is redelivered, where it is recognised as a duplicate. Never silently "do nothing" here.
        if entries:
            await self._write_many(
                ("insert",),
                insert(t.inbox),
                t.inbox,
                [
                    {
                        "msg_id": e.msg_id,
                        "msg_type": e.msg_type,
                        "content_hash": e.content_hash,
                        "received_at": e.received_at,
                        "origin": e.origin,
                        "outcome": e.outcome,
                        "payload": e.payload,
                    }
                    for e in entries
                ],
            )


class SqlDeadLetterRepository(SqlRepository):
    async def add(self, letters: Sequence[DeadLetter]) -> None:
        # Same payload twice in one batch: fold first (PostgreSQL refuses one upsert touching a row twice).
        folded: dict[str, tuple[DeadLetter, int]] = {}
        for letter in letters:
            first, count = folded.get(letter.payload_hash, (letter, 0))
            folded[letter.payload_hash] = (first, count + 1)
        if not folded:
            return
        statement = self._insert(t.dead_letter)
        statement = statement.on_conflict_do_update(
            index_elements=["payload_hash"],
            set_={"times_received": t.dead_letter.c.times_received + statement.excluded.times_received},
        )
        await self.conn.execute(
            statement,
            [
                {
                    "payload_hash": letter.payload_hash,
                    "msg_id": letter.msg_id,
                    "reason": letter.reason,
                    "origin": letter.origin,
                    "payload": letter.payload,
                    "first_received_at": letter.received_at,
                    "times_received": count,
                }
                for letter, count in folded.values()
            ],
        )

    async def list(self, limit: int = 100) -> list[tuple[DeadLetter, int]]:
        result = await self.conn.execute(select(t.dead_letter))
        letters = [
            (DeadLetter(r.payload_hash, r.msg_id, r.reason, r.origin, r.payload, r.first_received_at), r.times_received)
            for r in result
        ]
        return sorted(letters, key=lambda pair: pair[0].listing_order())[:limit]
