"""Pattern hits are occurrences in event time: the same data in any order and any batching give exactly the same
hit rows, on memory, SQLite and PostgreSQL (Hy's law, repeated BP readings, a persisting elevation, TSH with FT4).

Each arrangement of the data runs under its own subject ids and message-id prefix in one store; the rows are
compared after mapping both back, so one database serves every arrangement.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
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
from tests.factories import inbound, lb, subject_id, vs
from tests.harness import run

Message = dict[str, Any]
Arrangement = Callable[[list[Message]], list[list[Message]]]
PATTERN_RULES = {
    "potential-hys-law",
    "hypertension-repeated-160-100",
    "aminotransferase-above-5x-uln-2-weeks",
    "tsh-high-ft4-low",
}
SPLIT_DBP = "s2-0503-a-dbp"  # the DBP of a reading whose SBP also meets 160/100; its msg_id sorts before the SBP's


@pytest.fixture(scope="module")
def full() -> PipelineConfig:
    return PipelineConfig(load_ruleset(ROOT / "rules"), default_grader(), RECIPIENTS)


def _trial(arrangement: int) -> list[Message]:
    """Four subjects, one pattern kind each (subject n of arrangement k is number 10 k + n)."""

    def who(n: int) -> str:
        return subject_id(10 * arrangement + n)

    def at(message: Message, name: str) -> Message:
        return message | {"msg_id": f"r{arrangement}-{name}"}

    def liver(n: int, name: str, test: str, value: float, on: str, uln: float, **extra: Any) -> Message:
        unit = "umol/L" if test == "BILI" else "U/L"
        return at(lb(who(n), test, value, LBSTRESU=unit, LBSTNRHI=uln, LBDTC=on, **extra), name)

    def bp(name: str, test: str, value: float, on: str) -> Message:
        return at(vs(who(2), test, value, at=on), name)

    def thyroid(name: str, test: str, value: float, on: str) -> Message:
        if test == "TSH":
            return at(lb(who(4), "TSH", value, LBSTRESU="mU/L", LBSTNRLO=0.27, LBSTNRHI=4.2, LBDTC=on), name)
        low = "LOW" if value < 12 else "NORMAL"
        return at(lb(who(4), "FT4", value, LBSTRESU="pmol/L", LBSTNRLO=12, LBSTNRHI=22, LBNRIND=low, LBDTC=on), name)

    return [
        # Hy's law: an abnormal baseline ALT (re-grades the later ALT when it comes late), the May case, and a June
        # case that a cholestatic ALP excludes (when the ALP comes last, the case is found and then taken away).
        liver(1, "s1-0401-alt", "ALT", 100, "2026-04-01T08:00", 40, LBBLFL="Y"),
        liver(1, "s1-0501-alt", "ALT", 400, "2026-05-01T08:00", 40),
        liver(1, "s1-0501-alp", "ALP", 110, "2026-05-01T08:00", 100),
        liver(1, "s1-0508-bili", "BILI", 45, "2026-05-08T08:00", 20.5),
        liver(1, "s1-0508-bili-repeat", "BILI", 47, "2026-05-08T08:00", 20.5),
        liver(1, "s1-0610-alt", "ALT", 130, "2026-06-10T08:00", 40),
        liver(1, "s1-0611-alp", "ALP", 230, "2026-06-11T08:00", 100),
        liver(1, "s1-0612-bili", "BILI", 44, "2026-06-12T08:00", 20.5),
        # Two readings >= 160/100 within 7 days; the 3 May reading has SBP and DBP both >= 160/100.
        bp("s2-0501-sbp", "SYSBP", 165, "2026-05-01T09:00"),
        bp("s2-0501-dbp", "DIABP", 95, "2026-05-01T09:00"),
        bp("s2-0503-b-sbp", "SYSBP", 170, "2026-05-03T09:00"),
        bp(SPLIT_DBP[3:], "DIABP", 104, "2026-05-03T09:00"),
        bp("s2-0520-sbp", "SYSBP", 171, "2026-05-20T09:00"),
        bp("s2-0524-sbp", "SYSBP", 150, "2026-05-24T09:00"),
        bp("s2-0524-dbp", "DIABP", 101, "2026-05-24T09:00"),
        # ALT > 5 x ULN over 2 weeks; an AST within limits in one draw does not end it; a normal ALT does.
        liver(3, "s3-0501-alt", "ALT", 250, "2026-05-01T08:00", 40),
        liver(3, "s3-0508-alt", "ALT", 230, "2026-05-08T08:00", 40),
        liver(3, "s3-0508-ast", "AST", 30, "2026-05-08T08:00", 35),
        liver(3, "s3-0515-alt", "ALT", 260, "2026-05-15T08:00", 40),
        liver(3, "s3-0522-alt", "ALT", 300, "2026-05-22T08:00", 40),
        liver(3, "s3-0605-alt", "ALT", 35, "2026-06-05T08:00", 40),
        liver(3, "s3-0606-ast", "AST", 400, "2026-06-06T08:00", 35),
        liver(3, "s3-0612-ast", "AST", 380, "2026-06-12T08:00", 35),
        # TSH above ULN with FT4 below LLN the same day; two TSH results of one draw are one occurrence.
        thyroid("s4-0501-tsh", "TSH", 6.2, "2026-05-01T08:00"),
        thyroid("s4-0501-ft4", "FT4", 8, "2026-05-01T08:00"),
        thyroid("s4-0520-tsh", "TSH", 5.0, "2026-05-20T08:00"),
        thyroid("s4-0520-ft4", "FT4", 13, "2026-05-20T08:00"),
        thyroid("s4-0601-tsh", "TSH", 7.0, "2026-06-01T08:00"),
        thyroid("s4-0601-tsh-repeat", "TSH", 7.1, "2026-06-01T08:00"),
        thyroid("s4-0601-ft4", "FT4", 9, "2026-06-01T10:00"),
    ]


def _when(message: Message) -> str:
    return str(message.get("LBDTC") or message.get("VSDTC"))


def _ordered(messages: list[Message]) -> list[Message]:
    return sorted(messages, key=lambda m: (_when(m), m["msg_id"]))


def _shuffled(seed: int) -> Arrangement:
    def arrange(messages: list[Message]) -> list[list[Message]]:
        rng = random.Random(seed)
        order = messages[:]
        rng.shuffle(order)
        cuts = sorted(rng.sample(range(1, len(order)), 8))
        return [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]

    return arrange


def _split_reading(messages: list[Message]) -> list[list[Message]]:
    """Everything in event order, but the DBP of the 3 May reading in a batch of its own after the rest."""
    late = [m for m in messages if m["msg_id"].endswith(SPLIT_DBP[2:])]
    return [[m for m in _ordered(messages) if m not in late], late]


ARRANGEMENTS: dict[str, Arrangement] = {
    "in event order, one batch": lambda ms: [_ordered(ms)],
    "in event order, one message per batch": lambda ms: [[m] for m in _ordered(ms)],
    "latest first, one message per batch": lambda ms: [[m] for m in reversed(_ordered(ms))],
    "SBP and DBP of one reading in different batches": _split_reading,
    "shuffled (seed 20261202), cut into 9 batches": _shuffled(20261202),
    "shuffled (seed 7), cut into 9 batches": _shuffled(7),
}


async def _hit_rows(store: UnitOfWorkFactory) -> list[tuple[Any, ...]]:
    columns = "rule_id, study_id, subject_id, occurrence, msg_id, alert_key, subject_ref, grade, observed_on, detail"
    if isinstance(store, MemoryStore):
        return [
            (
                *(h.rule.id, h.study_id, h.subject_id, h.occurrence, h.msg_id, h.alert_key, h.subject_ref, h.grade),
                *(h.observed_on, h.detail),
            )
            for h in store.state.hits.values()
        ]
    assert isinstance(store, SqlStore)
    async with store.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(f"SELECT {columns} FROM rule_hit"))]


def _as_arrangement_0(row: tuple[Any, ...], arrangement: int) -> tuple[Any, ...]:
    """A hit row of arrangement k with its subject ids and message ids as arrangement 0 has them."""

    def same(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for n in range(1, 5):
            value = value.replace(subject_id(10 * arrangement + n), subject_id(n))
        return value.replace(f"r{arrangement}-", "r0-")

    return tuple(same(value) for value in row)


async def test_the_same_data_in_any_order_and_batching_give_the_same_hit_rows(
    store: UnitOfWorkFactory, full: PipelineConfig, now: datetime
) -> None:
    for arrangement, arrange in enumerate(ARRANGEMENTS.values()):
        for batch in arrange(_trial(arrangement)):
            await run(store, full, now, inbound(*batch))
    by_arrangement: dict[int, set[tuple[Any, ...]]] = {k: set() for k in range(len(ARRANGEMENTS))}
    for row in await _hit_rows(store):
        if row[0] not in PATTERN_RULES:
            continue
        arrangement = int(row[2][-4:]) // 10  # subject n of arrangement k is number 10 k + n
        by_arrangement[arrangement].add(_as_arrangement_0(row, arrangement))

    reference = by_arrangement[0]
    patterns = sorted((r[0], r[2], r[3], r[4], r[7]) for r in reference)
    assert patterns == [
        ("aminotransferase-above-5x-uln-2-weeks", subject_id(3), "2026-05-15T08:00", "r0-s3-0515-alt", 3),
        ("hypertension-repeated-160-100", subject_id(2), "2026-05-03T09:00", f"r0-{SPLIT_DBP[3:]}", 3),
        ("hypertension-repeated-160-100", subject_id(2), "2026-05-24T09:00", "r0-s2-0524-dbp", 3),
        ("potential-hys-law", subject_id(1), "2026-05-08T08:00", "r0-s1-0508-bili", 2),
        ("tsh-high-ft4-low", subject_id(4), "2026-05-01T08:00", "r0-s4-0501-tsh", 1),
        ("tsh-high-ft4-low", subject_id(4), "2026-06-01T08:00", "r0-s4-0601-tsh", 1),
    ]
    for index, name in enumerate(ARRANGEMENTS):
        got = by_arrangement[index]
        assert sorted(got - reference) == [] and sorted(reference - got) == [], name
