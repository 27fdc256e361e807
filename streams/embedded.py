"""Owns the embedded runtime: an in-process asyncio queue feeding batches to the same handlers as Kafka, from a
file (`replay`) or from the files dropped into an inbox directory (`serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from safety_monitor.bootstrap import App
from safety_monitor.service.deadlines import DeadlineReport, check_deadlines
from safety_monitor.service.handling import handle_batch
from safety_monitor.service.records import BatchOutcome, InboundMessage, RejectedMessage
from streams.decoding import MAX_LINE_BYTES, Decoded, Rejected, decode

log = logging.getLogger(__name__)

_END = None


@dataclass
class RunSummary:
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    batches: int = 0
    seconds: float = 0.0
    acknowledged_through: str | None = None  # origin of the last message acknowledged
    complete: bool = True  # False when a stop request ended the run before the source was exhausted
    deadlines: DeadlineReport = field(default_factory=DeadlineReport)  # the reporting clocks, checked at the end

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
    source: AsyncIterator[tuple[bytes | str, str]] | Iterable[tuple[bytes | str, str]],
    *,
    batch_size: int | None = None,
    stop: asyncio.Event | None = None,
) -> RunSummary:
    """Feed (payload, origin) pairs through decode -> handle -> commit -> acknowledge, in batches.

    A bounded queue sits between the reader and the handler, so a fast source cannot outrun the store by
    more than a few batches. A batch is acknowledged (counted in `acknowledged_through`) only after commit.
    Once `stop` is set, the batch being handled is finished and committed and nothing more is read or handled
    (`complete` is then False: the rest of the source was not processed).
    """
    size = batch_size or app.settings.batch_size
    queue: asyncio.Queue[list[InboundMessage | RejectedMessage] | None] = asyncio.Queue(maxsize=4)
    summary = RunSummary()
    started = time.perf_counter()

    async def read() -> None:
        try:
            batch: list[InboundMessage | RejectedMessage] = []
            async for payload, origin in _aiter(source):
                if stop is not None and stop.is_set():
                    summary.complete = False
                    return  # the partial batch is dropped unhandled: nothing of it was acknowledged
                batch.append(to_service(decode(payload, origin, now=app.clock.now())))
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
            summary.outcome.add(outcome.totals())
            summary.batches += 1
            summary.acknowledged_through = batch[-1].origin
            if stop is not None and stop.is_set():
                summary.complete = False
                return

    reader = asyncio.create_task(read())
    try:
        await handle()
    finally:
        if not reader.done():
            reader.cancel()
        while not reader.done():  # the handler left early: empty the queue so the reader's end marker fits
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            await asyncio.sleep(0)
        await asyncio.gather(reader, return_exceptions=True)
    if not reader.cancelled() and (error := reader.exception()) is not None:
        raise error  # the source failed: what was read before it is committed, the rest is not
    # The reporting clocks right after the data that may have made them due, not only at the scheduler's next
    # slot: a clock that is past due when its file arrives is escalated in the same run.
    summary.deadlines = await check_deadlines(app.store, app.pipeline, app.clock.now())
    summary.seconds = time.perf_counter() - started
    return summary


async def _aiter(
    source: AsyncIterator[tuple[bytes | str, str]] | Iterable[tuple[bytes | str, str]],
) -> AsyncIterator[tuple[bytes | str, str]]:
    if isinstance(source, AsyncIterator):
        async for item in source:
            yield item
    else:
        for index, item in enumerate(source):
            yield item
            if index % 1000 == 999:
                await asyncio.sleep(0)  # let the handler run


def file_source(path: Path) -> Iterable[tuple[bytes, str]]:
    """(line as bytes, "file:lineno") for each non-blank line of a JSONL file. The bytes go to the decoder as
    they are (it alone decides about UTF-8); a line over the decoder's cap is not read whole into memory: its
    first MAX_LINE_BYTES + 1 bytes stand for it, and the decoder refuses it for its length."""
    with path.open("rb") as handle:
        number = 0
        while line := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if not line.endswith(b"\n") and len(line) > MAX_LINE_BYTES:
                while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass  # the rest of an over-long line is skipped, not kept
            if line.strip():
                yield line.rstrip(b"\n"), f"{path.name}:{number}"


async def replay_file(app: App, path: Path, *, batch_size: int | None = None) -> RunSummary:
    """Replay a JSONL file of wire messages through the embedded runtime; then send what the outbox holds."""
    return await run_source(app, file_source(path), batch_size=batch_size)


class UnreadableFile(Exception):
    """An inbox file that cannot be read (permissions, I/O error, vanished): rejected, never retried forever."""


def _readable_source(path: Path) -> Iterator[tuple[bytes, str]]:
    # Only errors of reading the file become UnreadableFile; a store that is away (which may raise OSError on
    # PostgreSQL) must leave the file in the inbox to be tried again.
    try:
        yield from file_source(path)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path.name}: {exc.strerror or exc}") from exc


@dataclass(frozen=True, slots=True)
class InboxDirectory:
    """Where site systems drop wire JSONL files for `serve`: `*.jsonl` files directly in `root` are taken, oldest
    first; a file is moved to `processed/` once every message of it is committed, or to `rejected/` (with a
    `.reason` file beside it) if it cannot be read.

    A file must be complete when it appears under its `.jsonl` name: writers write it under another name (e.g.
    `export.jsonl.part` or `.export.jsonl`, which are ignored) in the same directory, then rename it into place
    (an atomic rename on one file system). A file copied in place under its final name could be read half-written.
    """

    root: Path

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    def prepare(self) -> None:
        for directory in (self.root, self.processed, self.rejected):
            directory.mkdir(parents=True, exist_ok=True)

    def waiting(self) -> list[Path]:
        """The complete files waiting, oldest first (modification time, then name)."""
        found = []
        for path in self.root.glob("*.jsonl"):
            if path.name.startswith("."):
                continue
            try:
                if path.is_file():
                    found.append((path.stat().st_mtime, path.name, path))
            except OSError:  # vanished meanwhile
                continue
        return [path for _, _, path in sorted(found)]

    def move(self, path: Path, into: Path) -> Path:
        """Move `path` into `into` under its name, or `name.N.jsonl` if a file of that name was moved before."""
        target = into / path.name
        number = 1
        while target.exists():
            target = into / f"{path.stem}.{number}{path.suffix}"
            number += 1
        moved = path.rename(target)
        moved.chmod(0o600)  # the site may have written it readable by all; it holds subject data
        return moved

    def reject(self, path: Path, reason: str) -> Path | None:
        """Move an unreadable file to `rejected/` with its reason beside it; None if it vanished meanwhile."""
        if not path.exists():
            return None
        target = self.move(path, self.rejected)
        target.with_name(target.name + ".reason").write_text(reason + "\n", encoding="utf-8")
        return target


@dataclass(frozen=True, slots=True)
class InboxFile:
    """What became of one inbox file: processed (`summary.complete`), left for later (stopped), or rejected."""

    name: str
    summary: RunSummary | None
    moved_to: Path | None  # None: left in the inbox (stopped part-way: read again, as duplicates, next time),
    # or an unreadable file that vanished before it could be moved
    reason: str = ""  # why it was rejected


async def ingest_file(app: App, inbox: InboxDirectory, path: Path, *, stop: asyncio.Event | None = None) -> InboxFile:
    """Process one inbox file as `replay` does (same batches, inbox dedupe, dead letters), then move it.

    A stop request finishes the batch in hand and leaves the file where it is: the messages already committed
    are recognised as duplicates when it is read again, so nothing is lost or counted twice. Any failure other
    than reading the file (the store is away) propagates and leaves the file in the inbox.
    """
    try:
        summary = await run_source(app, _readable_source(path), stop=stop)
    except UnreadableFile as exc:
        log.error("inbox file rejected file=%s: %s", path.name, exc)
        moved = await asyncio.to_thread(inbox.reject, path, f"{datetime.now(UTC).isoformat()} {exc}")
        return InboxFile(path.name, None, moved, str(exc))
    if not summary.complete:
        log.warning("inbox file left for the next start file=%s through=%s", path.name, summary.acknowledged_through)
        return InboxFile(path.name, summary, None)
    return InboxFile(path.name, summary, await asyncio.to_thread(inbox.move, path, inbox.processed))


async def watch_inbox(
    app: App,
    inbox: InboxDirectory,
    stop: asyncio.Event,
    *,
    poll: float,
    on_file: Callable[[InboxFile], None] | None = None,
) -> None:
    """Until `stop` is set: process the inbox's waiting files one after the other, then look again every `poll`
    seconds. A file whose processing fails (the store is away) stays in the inbox and is tried again after a
    pause; the loop never dies quietly while files wait."""
    await asyncio.to_thread(inbox.prepare)
    pause = poll
    while not stop.is_set():
        try:
            for path in await asyncio.to_thread(inbox.waiting):
                if stop.is_set():
                    break
                done = await ingest_file(app, inbox, path, stop=stop)
                if on_file is not None:
                    on_file(done)
            pause = poll
        except Exception:
            pause = min(pause * 2, 60.0)
            log.exception("inbox pass failed; the file stays in %s and is tried again in %.0f s", inbox.root, pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
