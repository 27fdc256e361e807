"""Owns the error policy around a batch: commit-then-acknowledge, retries, and isolating a poison message.

A handler error on a valid message is never logged and ignored (that would be a missed alert): the batch is
retried; if it keeps failing it is split and each message retried alone; a message that still fails is
dead-lettered with the error, in its own transaction. Only if even that cannot be stored does the error
propagate, and the runtime stops without acknowledging.
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


async def _with_retries(
    store: UnitOfWorkFactory, batch: Batch, config: PipelineConfig, clock: Clock, policy: HandlingPolicy
) -> BatchOutcome:
    delay = policy.first_backoff_s
    for attempt in range(1, policy.attempts + 1):
        try:
            return await commit_batch(store, batch, config, clock)
        except Exception:
            if attempt == policy.attempts:
                raise
            log.warning("batch failed size=%d attempt=%d; retrying", len(batch), attempt, exc_info=True)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


async def handle_batch(
    store: UnitOfWorkFactory,
    batch: Batch,
    config: PipelineConfig,
    clock: Clock,
    policy: HandlingPolicy = HandlingPolicy(),
) -> BatchOutcome:
    """Process and commit a batch with the error policy above. Returns once every message is accounted for."""
    try:
        return await _with_retries(store, batch, config, clock, policy)
    except Exception as exc:
        if len(batch) == 1:
            return await _dead_letter_failure(store, batch[0], config, clock, exc)
        log.error("batch failed size=%d after %d attempts; isolating messages", len(batch), policy.attempts)
    total = BatchOutcome()
    for item in batch:
        total.add(await handle_batch(store, [item], config, clock, policy))
    return total


async def _dead_letter_failure(
    store: UnitOfWorkFactory,
    item: InboundMessage | RejectedMessage,
    config: PipelineConfig,
    clock: Clock,
    exc: Exception,
) -> BatchOutcome:
    msg_id = item.message.envelope.msg_id if isinstance(item, InboundMessage) else item.msg_id
    log.error(
        "message failed alone after retries msg_id=%s origin=%s; dead-lettering",
        msg_id,
        item.origin,
        exc_info=exc,
    )
    error = f"handler error: {type(exc).__name__}: {exc}"
    letter = DeadLetter(payload_hash(item.payload), msg_id, error, item.origin, item.payload, clock.now())
    async with store() as uow:
        await uow.dead_letters.add([letter])
        if config.publish:
            await uow.publications.add([dead_letter_publication(letter)])
        await uow.commit()
    return BatchOutcome(
        received=1, dead_lettered=1, handler_failures=1, dead_letter_reasons=[error], dead_letters=[letter]
    )
