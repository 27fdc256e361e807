"""Owns the in-memory scheduled work: digest runs, job leases and publications to the alerts topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from safety_monitor.adapters.memory.state import MemoryRepository
from safety_monitor.service.ports import LeaseState
from safety_monitor.service.records import Publication


class MemoryDigests(MemoryRepository):
    async def last_sent(self, kind: str) -> datetime | None:
        return self.s.digests.get(kind)

    async def record_sent(self, kind: str, at: datetime, recipients: Sequence[str]) -> None:
        self.s.digests[kind] = at


class MemoryLeases(MemoryRepository):
    async def claim(self, job: str, slot: int, holder: str, now: datetime, held_until: datetime) -> bool:
        last = self.s.leases.get(job)
        if last is not None:
            finished_or_expired = last.done_at is not None or last.held_until < now
            retry_expired = last.slot == slot and last.done_at is None and last.held_until < now
            if not ((last.slot < slot and finished_or_expired) or retry_expired):
                return False
        self.s.leases[job] = LeaseState(job, slot, holder, held_until, None)
        return True

    async def complete(self, job: str, slot: int, holder: str, at: datetime) -> None:
        last = self.s.leases.get(job)
        if last is not None and last.slot == slot and last.holder == holder:
            self.s.leases[job] = replace(last, done_at=at)

    async def states(self) -> list[LeaseState]:
        return [self.s.leases[job] for job in sorted(self.s.leases)]

    async def release(self, job: str, holder: str, at: datetime) -> None:
        last = self.s.leases.get(job)
        if last is not None and last.holder == holder and last.done_at is None:
            self.s.leases[job] = replace(last, held_until=at - timedelta(seconds=1))


class MemoryPublications(MemoryRepository):
    async def add(self, publications: Sequence[Publication]) -> None:
        for publication in publications:
            self.s.publications.setdefault(publication.publication_id, publication)

    async def pending(self, created_before: datetime, limit: int) -> list[Publication]:
        waiting = [p for p in self.s.publications.values() if p.published_at is None and p.created_at < created_before]
        return sorted(waiting, key=lambda p: (p.created_at, p.publication_id))[:limit]

    async def backlog(self) -> int:
        return sum(1 for p in self.s.publications.values() if p.published_at is None)

    async def mark_published(self, publication_ids: Sequence[str], at: datetime) -> None:
        for publication_id in publication_ids:
            publication = self.s.publications.get(publication_id)
            if publication is not None and publication.published_at is None:
                self.s.publications[publication_id] = replace(publication, published_at=at)
