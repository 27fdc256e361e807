"""Owns the SQL publication repository: the records to publish to streams, and which are published."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, as_utc, chunks
from safety_monitor.service.records import (
    Publication,
)


def _publication(row: Any) -> Publication:
    return Publication(
        publication_id=row.publication_id,
        stream=row.stream,
        key=row.key,
        value=row.value,
        created_at=as_utc(row.created_at),
        published_at=as_utc(row.published_at) if row.published_at is not None else None,
    )


class SqlPublicationRepository(SqlRepository):
    async def add(self, publications: Sequence[Publication]) -> None:
        rows = [
            {
                "publication_id": p.publication_id,
                "stream": p.stream,
                "key": p.key,
                "value": p.value,
                "created_at": p.created_at,
                "published_at": p.published_at,
            }
            for p in publications
        ]
        await self._insert_ignore(t.publication, rows, ["publication_id"])

    async def pending(self, created_before: datetime, limit: int) -> list[Publication]:
        c = t.publication.c
        query = (
            select(t.publication)
            .where(c.published_at.is_(None), c.created_at < created_before)
            .order_by(c.created_at, c.publication_id)
            .limit(limit)
        )
        return [_publication(row) for row in await self.conn.execute(query)]

    async def backlog(self) -> int:
        query = select(func.count()).select_from(t.publication).where(t.publication.c.published_at.is_(None))
        return int((await self.conn.execute(query)).scalar_one())

    async def mark_published(self, publication_ids: Sequence[str], at: datetime) -> None:
        c = t.publication.c
        for chunk in chunks(sorted(set(publication_ids))):
            await self.conn.execute(
                update(t.publication)
                .where(c.publication_id.in_(chunk), c.published_at.is_(None))
                .values(published_at=at)
            )
