"""Running batches through the pipeline in tests, on any store."""

from __future__ import annotations

from datetime import datetime

from safety_monitor.service.pipeline import PipelineConfig, process_batch
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.records import BatchOutcome, InboundMessage, RejectedMessage


async def run(
    store: UnitOfWorkFactory,
    config: PipelineConfig,
    now: datetime,
    batch: list[InboundMessage | RejectedMessage],
) -> BatchOutcome:
    async with store() as uow:
        outcome = await process_batch(uow, batch, config, now)
        await uow.commit()
    return outcome


async def notices(store: UnitOfWorkFactory, now: datetime) -> list[tuple[str, str, int]]:
    """(change, rule, grade) of each notification waiting to be emailed (one per receiver and alert change)."""
    async with store() as uow:
        waiting = await uow.notifications.pending()
    return [(n.kind, str(n.context["rule_id"]), int(str(n.context["grade"]))) for n in waiting]
