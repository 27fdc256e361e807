"""Pattern conditions over event time: the same occurrences, identified by measurement, whatever order and batching
results arrive in (seeded shuffles and cuts)."""

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


def result(
    test: str,
    value: float,
    on: str,
    *,
    uln: float | None = None,
    lln: float | None = None,
    domain: MessageType = LB,
    msg_id: str | None = None,
) -> Finding:
    env = Envelope(msg_id or f"m{next(_ids):06d}", domain, datetime(2026, 5, 1, tzinfo=UTC), "012", 1, "S", "S-1")
    unit = "mmHg" if domain is VS else "U/L"
    return Finding(env, test, value, unit, PartialDate.parse(on), False, uln=uln, lln=lln)


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
THYROID = PatternCondition(
    PatternKind.TOGETHER,
    (
        Reading(LB, frozenset({"TSH"}), ValueTest(Comparison.X_ULN_ABOVE, 1)),
        Reading(LB, frozenset({"FT4"}), ValueTest(Comparison.BELOW_LLN, 0)),
    ),
    window_days=0,
)
GROWS_ONLY = (PatternKind.REPEATED, PatternKind.TOGETHER)

Occurrences = dict[str, tuple[str, str, tuple[str, ...]]]  # occurrence -> (anchor msg_id, detail, evidence msg_ids)


def occurrences(condition: PatternCondition, findings: list[Finding]) -> Occurrences:
    found: Occurrences = {}
    for m in condition.evaluate((f, ()) for f in findings):
        assert m.occurrence not in found, f"two matches for one occurrence {m.occurrence}"
        found[m.occurrence] = (m.anchor.envelope.msg_id, m.detail, tuple(sorted(f.envelope.msg_id for f in m.basis)))
    return found


def stream(condition: PatternCondition, batches: list[list[Finding]]) -> Occurrences:
    """What the store holds after a stream: each batch evaluated over everything so far and upserted by occurrence;
    for kinds that can lose occurrences the stored ones are replaced by what the whole history shows."""
    seen: list[Finding] = []
    stored: Occurrences = {}
    for batch in batches:
        seen += batch
        found = occurrences(condition, seen)
        if condition.pattern in GROWS_ONLY:
            assert stored.keys() <= found.keys(), "an occurrence of a kind that only grows disappeared"
        else:
            stored = {k: v for k, v in stored.items() if k in found}
        stored.update(found)
    return stored


def cut(order: list[Finding], rng: random.Random) -> list[list[Finding]]:
    """`order` cut into batches at random places (single messages up to everything at once)."""
    cuts = sorted(rng.sample(range(1, len(order)), rng.randint(0, len(order) - 1)))
    return [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]


SCENARIOS = {
    "hys-law": (
        HYS,
        [
            result("ALT", 150, "2026-05-01T08:00", uln=40),
            result("ALP", 110, "2026-05-01T08:00", uln=100),
            result("BILI", 45, "2026-05-08T08:00", uln=20.5),
            result("BILI", 47, "2026-05-08T08:00", uln=20.5),  # a repeat assay of the same draw: one occurrence
            result("AST", 40, "2026-05-08T08:00", uln=35),
            result("BILI", 50, "2026-06-30T08:00", uln=20.5),  # no aminotransferase rise within 14 days before
            result("ALT", 130, "2026-06-10T08:00", uln=40),
            result("BILI", 44, "2026-06-12T08:00", uln=20.5),
            result("ALP", 230, "2026-06-11T08:00", uln=100),  # cholestatic: excludes the June episode (late: removes)
        ],
        ["2026-05-08T08:00"],
    ),
    "bp-repeat": (
        BP,
        [
            result("SYSBP", 165, "2026-05-01T09:00", domain=VS),
            result("DIABP", 95, "2026-05-01T09:00", domain=VS),
            result("SYSBP", 150, "2026-05-03T09:00", domain=VS),
            result("DIABP", 101, "2026-05-03T09:00", domain=VS),
            result("SYSBP", 171, "2026-05-20T09:00", domain=VS),
            result("SYSBP", 166, "2026-05-26T09:00", domain=VS),  # SBP and DBP of one reading both >= 160/100
            result("DIABP", 104, "2026-05-26T09:00", domain=VS),
            result("SYSBP", 158, "2026-06-10T09:00", domain=VS),
        ],
        ["2026-05-03T09:00", "2026-05-26T09:00"],
    ),
    "alt-persisting": (
        PERSIST,
        [
            result("ALT", 250, "2026-05-01", uln=40),
            result("ALT", 230, "2026-05-08", uln=40),
            result("AST", 30, "2026-05-08", uln=35),  # same draw as an ALT > 5 x ULN: the draw still meets it
            result("ALT", 260, "2026-05-15", uln=40),
            result("ALT", 300, "2026-05-22", uln=40),
            result("ALT", 210, "2026-06-01", uln=40),
            result("ALT", 35, "2026-06-05", uln=40),  # ends the run
            result("AST", 400, "2026-06-06", uln=35),
            result("AST", 380, "2026-06-12", uln=35),  # a run of 6 days only
        ],
        ["2026-05-15"],
    ),
    "tsh-ft4": (
        THYROID,
        [
            result("TSH", 6.2, "2026-05-01T08:00", uln=4.2),
            result("FT4", 8, "2026-05-01T08:00", lln=12),
            result("TSH", 5.0, "2026-05-20T08:00", uln=4.2),
            result("FT4", 13, "2026-05-20T08:00", lln=12),  # FT4 within limits: no occurrence
            result("TSH", 7.0, "2026-06-01T08:00", uln=4.2),
            result("TSH", 7.1, "2026-06-01T08:00", uln=4.2),  # two TSH results of one draw: one occurrence
            result("FT4", 9, "2026-06-01T10:00", lln=12),  # the same day (window_days: 0)
        ],
        ["2026-05-01T08:00", "2026-06-01T08:00"],
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_occurrences_do_not_depend_on_arrival_order_or_batching(name: str) -> None:
    condition, findings, expected = SCENARIOS[name]
    reference = occurrences(condition, sorted(findings, key=lambda f: f.collected_at.text))
    assert sorted(reference) == expected
    one_at_a_time = [[f] for f in sorted(findings, key=lambda f: f.collected_at.text)]
    assert stream(condition, one_at_a_time) == reference
    rng = random.Random(20260501)
    for _ in range(200):
        order = findings[:]
        rng.shuffle(order)
        assert occurrences(condition, order) == reference  # the input's order does not matter
        assert stream(condition, cut(order, rng)) == reference  # nor the arrival order and batching


def test_the_sbp_and_dbp_of_one_reading_are_one_occurrence_whichever_arrives_first() -> None:
    earlier = result("SYSBP", 165, "2026-05-01T09:00", domain=VS)
    sbp = result("SYSBP", 170, "2026-05-03T09:00", domain=VS, msg_id="z-sbp")
    dbp = result("DIABP", 104, "2026-05-03T09:00", domain=VS, msg_id="a-dbp")  # its msg_id sorts first
    sbp_first = occurrences(BP, [earlier, sbp])
    both = occurrences(BP, [earlier, sbp, dbp])
    assert list(sbp_first) == list(both) == ["2026-05-03T09:00"]
    assert both == occurrences(BP, [dbp, earlier, sbp])
    assert both["2026-05-03T09:00"][2] == tuple(sorted(["a-dbp", "z-sbp", earlier.envelope.msg_id]))


def test_a_run_is_identified_by_the_draw_that_reaches_the_duration_however_it_is_lengthened() -> None:
    run = [result("ALT", 250, f"2026-05-{day:02d}", uln=40) for day in (8, 15, 22)]
    assert list(occurrences(PERSIST, run)) == ["2026-05-22"]
    # A late result from before the run lengthens it backwards: the criterion was met a week earlier.
    late = result("ALT", 240, "2026-05-01", uln=40)
    assert list(occurrences(PERSIST, [*run, late])) == ["2026-05-15"]
    # A late result within limits in between splits it: neither half lasts 14 days.
    assert occurrences(PERSIST, [*run, late, result("ALT", 38, "2026-05-10", uln=40)]) == {}


def test_a_late_cholestatic_alp_takes_the_hys_law_occurrence_away() -> None:
    pair = [result("ALT", 150, "2026-05-01", uln=40), result("BILI", 45, "2026-05-08", uln=20.5)]
    assert list(occurrences(HYS, pair)) == ["2026-05-08"]
    assert occurrences(HYS, [*pair, result("ALP", 230, "2026-05-04", uln=100)]) == {}


def test_hys_law_window_is_0_to_14_days_after_the_aminotransferase_rise() -> None:
    alt = result("ALT", 120, "2026-05-01", uln=40)  # exactly 3 x ULN: meets ">= 3 x ULN"
    assert len(occurrences(HYS, [alt, result("BILI", 41, "2026-05-15", uln=20.5)])) == 1  # day 14, exactly 2 x ULN
    assert occurrences(HYS, [alt, result("BILI", 41, "2026-05-16", uln=20.5)]) == {}  # day 15
    assert occurrences(HYS, [result("BILI", 41, "2026-04-30", uln=20.5), alt]) == {}  # bilirubin first
    assert occurrences(HYS, [alt, result("BILI", 40.9, "2026-05-02", uln=20.5)]) == {}  # below 2 x ULN


def test_a_result_without_a_full_date_is_not_placed_in_any_window() -> None:
    readings = [result("SYSBP", 170, "2026-05", domain=VS), result("SYSBP", 170, "2026-05-02", domain=VS)]
    assert occurrences(BP, readings) == {}
