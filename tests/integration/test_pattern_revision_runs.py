"""Long liver histories streamed in small batches with late results give the hits and alert states of one ordered
batch: Hy's law and ALT/AST > 5 x ULN over 2 weeks read only a stretch of each subject's history per batch, and the
stored occurrences before it must stand exactly as a whole-history evaluation would leave them (memory, SQLite,
PostgreSQL)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.cli.rule_tests import default_grader
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from tests.conftest import RECIPIENTS, ROOT
from tests.factories import inbound, lb, subject_id
from tests.harness import run

Message = dict[str, Any]
RULES = ("potential-hys-law", "aminotransferase-above-5x-uln-2-weeks")
SUBJECTS = 6
ULN = {"ALT": 40.0, "AST": 35.0, "BILI": 20.5, "ALP": 100.0}
UNIT = {"ALT": "U/L", "AST": "U/L", "BILI": "umol/L", "ALP": "U/L"}


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return PipelineConfig(load_ruleset(ROOT / "rules"), default_grader(), RECIPIENTS)


def _histories(arrangement: int, seed: int) -> list[Message]:
    """Six subjects over 200 days, drawn every 1-10 days; ALT sticks above 5 x ULN for weeks at a time."""
    rng = random.Random(seed)  # reproducible synthetic data, not security
    messages: list[Message] = []
    for n in range(1, SUBJECTS + 1):
        who = subject_id(100 * arrangement + n)
        day, high = rng.randrange(5), False
        while day < 200:
            on = (date(2026, 3, 2) + timedelta(days=day)).isoformat() + rng.choice(["T07:30", "T08:00", "T14:00"])
            high = rng.random() < (0.85 if high else 0.3)
            for test in ("ALT", "AST", "BILI", "ALP"):
                if test != "ALT" and rng.random() < 0.5:
                    continue
                ratio = rng.choice((5.5, 7.0) if high and test in ("ALT", "AST") else (0.6, 1.5, 2.2, 3.2))
                value = round(ratio * ULN[test], 1)
                name = f"a{arrangement}-{n}-{day}-{test}"
                messages.append(
                    lb(who, test, value, LBSTRESU=UNIT[test], LBSTNRHI=ULN[test], LBDTC=on, LBNRIND=None)
                    | {"msg_id": name}
                )
            day += rng.randrange(1, 11)
    return sorted(messages, key=lambda m: (m["LBDTC"], m["msg_id"]))


def _late(messages: list[Message], seed: int) -> list[list[Message]]:
    """Batches of five in event order, but one result in six arrives 20-120 results late (weeks of event time)."""
    rng = random.Random(seed)
    slots: list[tuple[float, int, Message]] = []
    for index, message in enumerate(messages):
        delay = rng.randrange(20, 121) if rng.random() < 1 / 6 else 0
        slots.append((index + delay + 0.5 * (delay > 0), index, message))
    order = [m for _, _, m in sorted(slots, key=lambda s: (s[0], s[1]))]
    return [order[i : i + 5] for i in range(0, len(order), 5)]


async def _rows(store: UnitOfWorkFactory) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    if isinstance(store, MemoryStore):
        hits = [
            (h.rule.id, h.subject_id, h.occurrence, h.msg_id, h.grade, h.observed_on, h.detail)
            for h in store.state.hits.values()
        ]
        alerts = [(a.rule_id, a.subject_id, a.status.value) for a in store.state.alerts.values()]
        return hits, alerts
    assert isinstance(store, SqlStore)
    async with store.engine.connect() as connection:
        found = await connection.execute(
            text("SELECT rule_id, subject_id, occurrence, msg_id, grade, observed_on, detail FROM rule_hit")
        )
        states = await connection.execute(text("SELECT rule_id, subject_id, status FROM alert"))
        return [tuple(r) for r in found], [tuple(r) for r in states]


def _as_first(row: tuple[Any, ...]) -> tuple[int, tuple[Any, ...]]:
    """(arrangement, the row with its subject and message ids as arrangement 0 has them)."""
    number = int(row[1][-4:])
    arrangement = number // 100

    def same(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.replace(subject_id(number), subject_id(number % 100)).replace(f"a{arrangement}-", "a0-")

    return arrangement, tuple(same(v) for v in row)


@pytest.mark.parametrize("seed", [20261203, 11])
async def test_late_results_in_small_batches_leave_what_one_ordered_batch_leaves(
    store: UnitOfWorkFactory, config: PipelineConfig, now: datetime, seed: int
) -> None:
    await run(store, config, now, inbound(*_histories(0, seed)))
    for batch in _late(_histories(1, seed), seed):
        await run(store, config, now, inbound(*batch))
    hits, alerts = await _rows(store)
    by: dict[int, dict[str, set[tuple[Any, ...]]]] = {k: {"hits": set(), "alerts": set()} for k in (0, 1)}
    for kind, rows in (("hits", hits), ("alerts", alerts)):
        for row in rows:
            if row[0] in RULES:
                arrangement, same = _as_first(row)
                by[arrangement][kind].add(same)
    ordered, late = by[0], by[1]
    assert {r[0] for r in ordered["hits"]} == set(RULES), "the data must show both patterns"
    assert sorted(late["hits"] - ordered["hits"]) == [] and sorted(ordered["hits"] - late["hits"]) == []
    assert late["alerts"] == ordered["alerts"]
