"""The outbound-topic outbox: alert and dead-letter records are stored with the batch and survive a crash before
they are sent, on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.service.handling import HandlingPolicy, handle_batch
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.publications import (
    ALERT_SCHEMA,
    DEAD_LETTER_SCHEMA,
    mark_published,
    outcome_publications,
    publish_pending,
)
from safety_monitor.service.records import Publication
from tests.factories import ae, enrolled_and_dosed, inbound, subject_id
from tests.harness import run

S7 = subject_id(7)
LATER = timedelta(minutes=5)


class Topics:
    """Stands in for the broker: what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[Publication] = []

    async def send(self, publications: Sequence[Publication]) -> None:
        self.sent.extend(publications)


def batch(origin: str = "safety.ae[0]@1") -> list:  # type: ignore[type-arg]
    return inbound(*enrolled_and_dosed(S7), ae(S7, "AE-1", "Haemoptysis", 2), "{not json", origin=origin)


async def test_a_publishing_batch_stores_its_alert_and_dead_letter_records(store, config, now) -> None:
    outcome = await run(store, replace(config, publish=True), now, batch())
    async with store() as uow:
        pending = await uow.publications.pending(now + LATER, 100)
    assert [p.publication_id for p in pending] == [p.publication_id for p in outcome_publications(outcome)]
    assert [p.stream for p in pending] == ["alerts", "deadletter"]
    alert = json.loads(pending[0].value)
    assert (alert["schema"], alert["kind"], alert["alert"]["rule_id"]) == (ALERT_SCHEMA, "raised", "hemoptysis")
    assert pending[0].key == f"ALTER-ICI-01:{S7}"
    letter = json.loads(pending[1].value)
    assert (letter["schema"], letter["origin"], letter["payload"]) == (
        DEAD_LETTER_SCHEMA,
        "safety.ae[0]@1:4",
        "{not json",
    )


async def test_the_embedded_runtime_stores_no_publications(store, config, now) -> None:
    await run(store, config, now, batch())
    async with store() as uow:
        assert await uow.publications.pending(now + LATER, 100) == []


async def test_what_a_crash_left_unsent_is_published_once_by_the_catch_up(store, config, now) -> None:
    # The worker committed the batch and died before sending: nothing was marked.
    await run(store, replace(config, publish=True), now, batch())
    topics = Topics()
    assert await publish_pending(store, topics.send, now) == 0  # too recent: a live worker may be sending it
    async with store() as uow:
        assert await uow.publications.backlog() == 2
    assert await publish_pending(store, topics.send, now + LATER) == 2
    assert [p.stream for p in topics.sent] == ["alerts", "deadletter"]
    async with store() as uow:
        assert await uow.publications.backlog() == 0
    assert await publish_pending(store, topics.send, now + 2 * LATER) == 0
    assert len(topics.sent) == 2


async def test_a_sent_batch_is_marked_and_not_sent_again(store, config, now) -> None:
    outcome = await run(store, replace(config, publish=True), now, batch())
    await mark_published(store, outcome_publications(outcome), now)
    topics = Topics()
    assert await publish_pending(store, topics.send, now + LATER) == 0


async def test_a_redelivered_batch_adds_no_second_publication(store, config, now) -> None:
    publishing = replace(config, publish=True)
    delivered = batch()
    await run(store, publishing, now, delivered)
    again = await run(store, publishing, now, delivered)  # the same offsets, after a crash before acknowledging
    assert again.duplicates == 3
    topics = Topics()
    assert await publish_pending(store, topics.send, now + LATER) == 2
    assert sorted(p.stream for p in topics.sent) == ["alerts", "deadletter"]


async def test_a_poison_message_dead_lettered_alone_is_published_too(
    store: UnitOfWorkFactory, config: PipelineConfig, now: datetime, monkeypatch
) -> None:
    import safety_monitor.service.handling as handling

    real = handling.process_batch

    async def failing_on_ae_1(uow, items, cfg, at):  # type: ignore[no-untyped-def]
        if any("AE-1" in item.payload for item in items):
            raise RuntimeError("handler bug")
        return await real(uow, items, cfg, at)

    monkeypatch.setattr(handling, "process_batch", failing_on_ae_1)
    outcome = await handle_batch(
        store, batch(), replace(config, publish=True), FixedClock(now), HandlingPolicy(attempts=1, first_backoff_s=0)
    )
    assert outcome.handler_failures == 1
    topics = Topics()
    await publish_pending(store, topics.send, now + LATER)
    reasons = [json.loads(p.value)["reason"] for p in topics.sent if p.stream == "deadletter"]
    assert len(reasons) == 2
    assert any(reason == "handler error: RuntimeError: handler bug" for reason in reasons)
