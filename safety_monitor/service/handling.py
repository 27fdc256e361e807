"""Owns the error policy around a batch: commit-then-acknowledge, retries, and isolating a poison message.

A handler error on a valid message is never logged and ignored (that would be a missed alert). A batch that
fails is split in halves and each half tried on its own (bisection): the halves without the bad message commit
as they are, so one bad message among 5,000 costs some 2 x 13 transactions, not 5,000. A message that fails
alone is retried with backoff (its failure may be passing); if it still fails it is dead-lettered with the
error, in its own transaction. Only if even that cannot be stored does the error propagate, and the runtime
stops without acknowledging. Halves commit in arrival order, so what a batch leaves is what it would have left
without the bad message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from safety_monitor.service.pipeline import PipelineConfig, payload_hash, process_batch
from safety_monitor.service.ports import Clock, UnitOfWorkFactory
from safety_monitor.service.publications import dead_letter_publication
from safety_monitor.service.records import BatchOutcome, DeadLetter, InboundMessage, RejectedMessage

log = logging.getLogger(__name__)

Batch = Sequence[InboundMessage | RejectedMessage]
REASON_CHARS = 300  # of a handler error kept as a dead letter's reason


@dataclass(frozen=True, slots=True)
class HandlingPolicy:
    attempts: int = 3
    first_backoff_s: float = 0.2


async def commit_batch(store: UnitOfWorkFactory, batch: Batch, config: PipelineConfig, clock: Clock) -> BatchOutcome:
    """One unit of work for the batch; returns only after the commit succeeded (then the caller acknowledges)."""
    async with store() as uow:
        outcome = await process_batch(uow, batch, config, clock.now())
        await uow.commit()
    return outcome


async def handle_batch(
    store: UnitOfWorkFactory,
    batch: Batch,
    config: PipelineConfig,
    clock: Clock,
    policy: HandlingPolicy = HandlingPolicy(),
) -> BatchOutcome:
    """Process and commit a batch with the error policy above. Returns once every message is accounted for."""
    try:
        return await commit_batch(store, batch, config, clock)
    except Exception as exc:
        if len(batch) == 1:
            return await _alone(store, batch[0], config, clock, policy, exc)
        log.warning(
            "batch failed size=%d first=%s error=%s; trying its halves", len(batch), batch[0].origin, _kind(exc)
        )
    middle = len(batch) // 2
    total = BatchOutcome()
    total.add(await handle_batch(store, batch[:middle], config, clock, policy))
    total.add(await handle_batch(store, batch[middle:], config, clock, policy))
    return total


async def _alone(
    store: UnitOfWorkFactory,
    item: InboundMessage | RejectedMessage,
    config: PipelineConfig,
    clock: Clock,
    policy: HandlingPolicy,
    exc: Exception,
) -> BatchOutcome:
    delay = policy.first_backoff_s
    for attempt in range(2, policy.attempts + 1):
        log.warning("message failed origin=%s attempt=%d error=%s; retrying", item.origin, attempt - 1, _kind(exc))
        await asyncio.sleep(delay)
        delay *= 2
        try:
            return await commit_batch(store, [item], config, clock)
        except Exception as again:
            exc = again
    return await _dead_letter_failure(store, item, config, clock, exc)


def _kind(exc: BaseException) -> str:
    """The exception's type only: its text may quote stored values (SQL parameters, pydantic input)."""
    return type(exc).__name__


async def _dead_letter_failure(
    store: UnitOfWorkFactory,
    item: InboundMessage | RejectedMessage,
    config: PipelineConfig,
    clock: Clock,
    exc: Exception,
) -> BatchOutcome:
    msg_id = item.message.envelope.msg_id if isinstance(item, InboundMessage) else item.msg_id
    log.error(
        "message failed alone after retries msg_id=%s origin=%s error=%s; dead-lettering",
        msg_id,
        item.origin,
        _kind(exc),
    )
    log.debug("handler error of msg_id=%s", msg_id, exc_info=exc)  # --debug only: may quote subject data
    error = f"handler error: {type(exc).__name__}: {exc}"[:REASON_CHARS]
    letter = DeadLetter(payload_hash(item.payload), msg_id, error, item.origin, item.payload, clock.now())
    async with store() as uow:
        await uow.dead_letters.add([letter])
        if config.publish:
            await uow.publications.add([dead_letter_publication(letter)])
        await uow.commit()
    return BatchOutcome(
        received=1, dead_lettered=1, handler_failures=1, dead_letter_reasons=[error], dead_letters=[letter]
    )
