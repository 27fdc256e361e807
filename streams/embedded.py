"""Owns the embedded runtime: an in-process asyncio queue feeding batches to the same handlers as Kafka."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from safety_monitor.bootstrap import App
from safety_monitor.service.handling import handle_batch
from safety_monitor.service.records import BatchOutcome, InboundMessage, RejectedMessage
from streams.wire import Decoded, Rejected, decode

log = logging.getLogger(__name__)

_END = None


@dataclass
class RunSummary:
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    batches: int = 0
    seconds: float = 0.0
    acknowledged_through: str | None = None  # origin of the last message acknowledged

    @property
    def rate(self) -> float:
        return self.outcome.received / self.seconds if self.seconds > 0 else 0.0


def to_service(item: Decoded | Rejected) -> InboundMessage | RejectedMessage:
    """What a runtime hands to the service layer for one decoded (or refused) wire message."""
    if isinstance(item, Decoded):
        return InboundMessage(item.message, item.content_hash, item.payload, item.origin)
    return RejectedMessage(item.msg_id, item.reason, item.payload, item.origin)


async def run_source(
    app: App,
    source: AsyncIterator[tuple[str, str]] | Iterable[tuple[str, str]],
    *,
    batch_size: int | None = None,
) -> RunSummary:
    """Feed (payload, origin) pairs through decode -> handle -> commit -> acknowledge, in batches.

    A bounded queue sits between the reader and the handler, so a fast source cannot outrun the store by
    more than a few batches. A batch is acknowledged (counted in `acknowledged_through`) only after commit.
    """
    size = batch_size or app.settings.batch_size
    queue: asyncio.Queue[list[InboundMessage | RejectedMessage] | None] = asyncio.Queue(maxsize=4)
    summary = RunSummary()
    started = time.perf_counter()

    async def read() -> None:
        try:
            batch: list[InboundMessage | RejectedMessage] = []
            async for payload, origin in _aiter(source):
                batch.append(to_service(decode(payload, origin)))
                if len(batch) >= size:
                    await queue.put(batch)
                    batch = []
            if batch:
                await queue.put(batch)
        finally:
            await queue.put(_END)

    async def handle() -> None:
        while (batch := await queue.get()) is not _END:
            outcome = await handle_batch(app.store, batch, app.pipeline, app.clock)
            summary.outcome.add(outcome)
            summary.batches += 1
            summary.acknowledged_through = batch[-1].origin

    reader = asyncio.create_task(read())
    try:
        await handle()
    finally:
        if not reader.done():
            reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    if not reader.cancelled() and (error := reader.exception()) is not None:
        raise error  # the source failed: what was read before it is committed, the rest is not
    summary.seconds = time.perf_counter() - started
    return summary


async def _aiter(
    source: AsyncIterator[tuple[str, str]] | Iterable[tuple[str, str]],
) -> AsyncIterator[tuple[str, str]]:
    if isinstance(source, AsyncIterator):
        async for item in source:
            yield item
    else:
        for index, item in enumerate(source):
            yield item
            if index % 1000 == 999:
                await asyncio.sleep(0)  # let the handler run


def file_source(path: Path) -> Iterable[tuple[str, str]]:
    """(line, "file:lineno") for each non-blank line of a JSONL file."""
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield line.rstrip("\n"), f"{path.name}:{number}"


async def replay_file(app: App, path: Path, *, batch_size: int | None = None) -> RunSummary:
    """Replay a JSONL file of wire messages through the embedded runtime; then send what the outbox holds."""
    return await run_source(app, file_source(path), batch_size=batch_size)
