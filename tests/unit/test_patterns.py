"""Pattern conditions over event time: the same matches whatever order results arrive in (seeded shuffles)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from safety_monitor.domain.conditions.finding import Comparison, ValueTest
from safety_monitor.domain.conditions.pattern import PatternCondition, PatternKind, Reading, hys_law_readings
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.messages import Envelope, Finding, MessageType

LB, VS = MessageType.LB, MessageType.VS
_ids = iter(range(1_000_000))


def result(test: str, value: float, on: str, *, uln: float | None = None, domain: MessageType = LB) -> Finding:
    env = Envelope(f"m{next(_ids):06d}", domain, datetime(2026, 5, 1, tzinfo=UTC), "012", 1, "S", "S-1")
    unit = "mmHg" if domain is VS else "U/L"
    return Finding(env, test, value, unit, PartialDate.parse(on), False, uln=uln)


HYS = PatternCondition(PatternKind.HYS_LAW, hys_law_readings(), window_days=14)
BP = PatternCondition(
    PatternKind.REPEATED,
    (
        Reading(VS, frozenset({"SYSBP"}), ValueTest(Comparison.VALUE_AT_LEAST, 160, "mmHg")),
        Reading(VS, frozenset({"DIABP"}), ValueTest(Comparison.VALUE_AT_LEAST, 100, "mmHg")),
    ),
    window_days=7,
    count=2,
)
PERSIST = PatternCondition(
    PatternKind.PERSISTENT, (Reading(LB, frozenset({"ALT", "AST"}), ValueTest(Comparison.X_ULN_ABOVE, 5)),), days=14
)


def anchors(condition: PatternCondition, findings: list[Finding]) -> list[tuple[str, str]]:
    return [(m.anchor.envelope.msg_id, m.detail) for m in condition.evaluate((f, ()) for f in findings)]


def incremental(condition: PatternCondition, order: list[Finding]) -> set[tuple[str, str]]:
    """What a stream sees: the pattern evaluated after each arrival, anchors collected (the stored hits)."""
    seen: list[Finding] = []
    hits: dict[str, str] = {}
    for finding in order:
        seen.append(finding)
        for msg_id, detail in anchors(condition, seen):
            hits[msg_id] = detail  # a hit is upserted by (rule, anchor msg id): the latest evaluation wins
    final = {m for m, _ in anchors(condition, seen)}
    return {(m, d) for m, d in hits.items() if m in final}


SCENARIOS = {
    "hys-law": (
        HYS,
        [
            result("ALT", 150, "2026-05-01T08:00", uln=40),
            result("ALP", 110, "2026-05-01T08:00", uln=100),
            result("BILI", 45, "2026-05-08T08:00", uln=20.5),
            result("AST", 40, "2026-05-08T08:00", uln=35),
            result("BILI", 50, "2026-06-20T08:00", uln=20.5),  # no aminotransferase rise within 14 days before
            result("ALT", 130, "2026-06-10T08:00", uln=40),
            result("BILI", 44, "2026-06-12T08:00", uln=20.5),
            result("ALP", 230, "2026-06-11T08:00", uln=100),  # cholestatic: excludes the June episode
        ],
        1,
    ),
    "bp-repeat": (
        BP,
        [
            result("SYSBP", 165, "2026-05-01T09:00", domain=VS),
            result("DIABP", 95, "2026-05-01T09:00", domain=VS),
            result("SYSBP", 150, "2026-05-03T09:00", domain=VS),
            result("DIABP", 101, "2026-05-03T09:00", domain=VS),
            result("SYSBP", 171, "2026-05-20T09:00", domain=VS),
            result("DIABP", 104, "2026-05-26T09:00", domain=VS),
            result("SYSBP", 158, "2026-06-10T09:00", domain=VS),
        ],
        2,
    ),
    "alt-persisting": (
        PERSIST,
        [
            result("ALT", 250, "2026-05-01", uln=40),
            result("ALT", 230, "2026-05-08", uln=40),
            result("ALT", 260, "2026-05-15", uln=40),
            result("ALT", 300, "2026-05-22", uln=40),
            result("ALT", 210, "2026-06-01", uln=40),
            result("ALT", 35, "2026-06-05", uln=40),  # ends the run
            result("AST", 400, "2026-06-06", uln=35),
            result("AST", 380, "2026-06-12", uln=35),  # a run of 6 days only
        ],
        1,
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_do_not_depend_on_arrival_order(name: str) -> None:
    condition, findings, expected = SCENARIOS[name]
    ordered = sorted(findings, key=lambda f: f.collected_at.text)
    reference = incremental(condition, ordered)
    assert len(reference) == expected
    assert {m for m, _ in reference} == {m for m, _ in anchors(condition, findings)}
    rng = random.Random(20260501)
    for _ in range(200):
        order = findings[:]
        rng.shuffle(order)
        assert incremental(condition, order) == reference


def test_hys_law_window_is_0_to_14_days_after_the_aminotransferase_rise() -> None:
    alt = result("ALT", 120, "2026-05-01", uln=40)  # exactly 3 x ULN: meets ">= 3 x ULN"
    assert len(anchors(HYS, [alt, result("BILI", 41, "2026-05-15", uln=20.5)])) == 1  # day 14, exactly 2 x ULN
    assert anchors(HYS, [alt, result("BILI", 41, "2026-05-16", uln=20.5)]) == []  # day 15
    assert anchors(HYS, [result("BILI", 41, "2026-04-30", uln=20.5), alt]) == []  # bilirubin first
    assert anchors(HYS, [alt, result("BILI", 40.9, "2026-05-02", uln=20.5)]) == []  # below 2 x ULN


def test_a_result_without_a_full_date_is_not_placed_in_any_window() -> None:
    assert (
        anchors(BP, [result("SYSBP", 170, "2026-05", domain=VS), result("SYSBP", 170, "2026-05-02", domain=VS)]) == []
    )
