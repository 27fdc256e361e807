"""Owns the in-memory inbox (message ids and content hashes) and dead letters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from safety_monitor.adapters.memory.state import MemoryRepository
from safety_monitor.service.records import DeadLetter, InboxEntry


class MemoryInbox(MemoryRepository):
    async def content_hashes(self, msg_ids: Iterable[str]) -> dict[str, str]:
        return {m: self.s.inbox[m].content_hash for m in msg_ids if m in self.s.inbox}

    async def payloads(self, msg_ids: Iterable[str]) -> dict[str, str]:
        return {m: self.s.inbox[m].payload for m in msg_ids if m in self.s.inbox}

    async def add(self, entries: Sequence[InboxEntry]) -> None:
        for entry in entries:
            self.s.inbox.setdefault(entry.msg_id, entry)


class MemoryDeadLetters(MemoryRepository):
    async def add(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            stored, count = self.s.dead_letters.get(letter.payload_hash, (letter, 0))
            self.s.dead_letters[letter.payload_hash] = (stored, count + 1)

    async def list(self, limit: int = 100) -> list[tuple[DeadLetter, int]]:
        return sorted(self.s.dead_letters.values(), key=lambda pair: pair[0].listing_order())[:limit]
