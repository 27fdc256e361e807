"""One bad message costs its batch a few transactions, never one transaction per message for everyone else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.service.handling import HandlingPolicy, handle_batch
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWork, UnitOfWorkFactory
from tests.conftest import Database
from tests.factories import ae, inbound, subject_id, vs
from tests.hostile import PoisonGrader


@dataclass
class CountingStore:
    """The store, counting the units of work opened on it (one per transaction tried)."""

    inner: UnitOfWorkFactory
    opened: int = 0
    sizes: list[int] = field(default_factory=list)

    def __call__(self) -> Any:
        self.opened += 1
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[UnitOfWork]:
        async with self.inner() as uow:
            yield uow


def readings(count: int, poison_at: set[int]) -> list[dict[str, Any]]:
    return [
        vs(subject_id(n % 50), "SYSBP", 666 if n in poison_at else 120, at=f"2026-04-{1 + n % 28:02d}T08:{n % 60:02d}")
        for n in range(count)
    ]


# Issue 10, "What to build" 2: bisection, not one message per transaction for everyone.
async def test_one_poison_message_in_2000_is_found_by_bisection(store: UnitOfWorkFactory, config, now) -> None:
    poisoned = PipelineConfig(config.ruleset, PoisonGrader(), config.alert_recipients)  # type: ignore[arg-type]
    counting = CountingStore(store)
    batch = inbound(*readings(2000, {1234}))
    outcome = await handle_batch(counting, batch, poisoned, FixedClock(now), HandlingPolicy(first_backoff_s=0))
    assert (outcome.received, outcome.applied, outcome.dead_lettered, outcome.handler_failures) == (2000, 1999, 1, 1)
    # log2(2000) ~ 11 levels of halves, two tries each, plus the lone message's retries and its dead letter
    assert counting.opened <= 2 * 11 + 6, counting.opened
    async with store() as uow:
        ((letter, _),) = await uow.dead_letters.list()
    assert letter.reason == "handler error: ValueError: cannot grade this"


async def test_three_poison_messages_are_each_dead_lettered_alone(store: UnitOfWorkFactory, config, now) -> None:
    poisoned = PipelineConfig(config.ruleset, PoisonGrader(), config.alert_recipients)  # type: ignore[arg-type]
    counting = CountingStore(store)
    batch = inbound(*readings(1000, {3, 500, 998}))
    outcome = await handle_batch(counting, batch, poisoned, FixedClock(now), HandlingPolicy(first_backoff_s=0))
    assert (outcome.applied, outcome.dead_lettered, outcome.handler_failures) == (997, 3, 3)
    assert counting.opened <= 3 * (2 * 10 + 6), counting.opened


# Issue 10, item 4: values the schema took but a database cannot store made a 5,000-message batch fail three
# times, then go one message per transaction. They are refused at the boundary: the batch commits once.
async def test_values_the_databases_cannot_store_cost_the_batch_nothing(database: Database, config, now) -> None:
    counting = CountingStore(database.store)
    good = [ae(subject_id(n % 40), f"AE-{n}", "Haemoptysis", 2) for n in range(1000)]
    hostile = [
        ae(subject_id(1), "AE-X1", "Haemoptysis", 2, version=2**63),
        ae(subject_id(2), "AE-X2", "Haemoptysis", 2) | {"sent_at": "0001-01-01T00:00:00+14:00"},
        ae(subject_id(3), "AE-X3", "Haemoptysis", 2) | {"AETERM": "blood\x00y"},
    ]
    batch = inbound(*good[:500], *hostile, *good[500:])
    outcome = await handle_batch(counting, batch, config, FixedClock(now), HandlingPolicy(first_backoff_s=0))
    assert (outcome.applied, outcome.dead_lettered, outcome.handler_failures) == (1000, 3, 0)
    assert counting.opened == 1
    async with database.store() as uow:
        letters = await uow.dead_letters.list()
    reasons = sorted(letter.reason for letter, _ in letters)
    assert any("record_version" in r for r in reasons) and any("sent_at" in r for r in reasons)
    assert any("AETERM" in r and "control" in r for r in reasons)
    assert all(len(r) < 400 for r in reasons), reasons
    assert json.dumps(reasons)  # plain text
