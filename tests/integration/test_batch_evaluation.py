"""Evaluating one batch against the stored history, on memory, SQLite and PostgreSQL: the batch's own results (new
ones and stored ones graded again) count as if written first, and the history read for a pattern reaches exactly
as far back as its window."""

from __future__ import annotations

import pytest

from safety_monitor.cli.rule_tests import default_grader
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from tests.conftest import RECIPIENTS, ROOT
from tests.factories import STUDY, ae, inbound, lb, subject_event, subject_id, vs
from tests.harness import run

S1 = subject_id(1)
DRAW = "2026-04-30T07:45"


@pytest.fixture(scope="module")
def full() -> PipelineConfig:
    return PipelineConfig(load_ruleset(ROOT / "rules"), default_grader(), RECIPIENTS)


def calcium() -> dict[str, object]:
    # 2.4 mmol/L is within limits as measured; corrected for albumin 25 g/L it is 2.7 mmol/L, above the ULN of 2.6
    # (CTCAE v5 Hypercalcemia grade 1: corrected serum calcium > ULN - 2.9 mmol/L).
    return lb(S1, "CA", 2.4, LBSTRESU="mmol/L", LBSTNRLO=2.2, LBSTNRHI=2.6, LBNRIND="NORMAL", LBDTC=DRAW)


def albumin() -> dict[str, object]:
    return lb(S1, "ALB", 25, LBSTRESU="g/L", LBSTNRLO=35, LBSTNRHI=50, LBNRIND="LOW", LBDTC=DRAW)


def hypercalcaemia() -> dict[str, object]:
    return ae(S1, "AE-1", "Hypercalcaemia", 1, soc="Metabolism and nutrition disorders", onset="2026-04-28")


async def derived(store: UnitOfWorkFactory) -> tuple[int | None, str | None]:
    async with store() as uow:
        (event,) = (await uow.adverse_events.current([(STUDY, S1, "AE-1")])).values()
    return event.derived_grade, event.derived_term


async def test_a_result_graded_again_in_the_batch_derives_the_ae_grade_with_its_new_grade(store, full, now) -> None:
    await run(store, full, now, inbound(hypercalcaemia(), calcium()))
    assert await derived(store) == (0, "Hypercalcemia")  # graded, within limits: grade 0 counts

    # The albumin of the same draw arrives: the stored calcium is graded again (corrected, grade 1) in this batch,
    # and the AE's derived grade reads that new grade, not the one stored before the batch.
    outcome = await run(store, full, now, inbound(albumin()))
    assert outcome.regraded == 1
    assert await derived(store) == (1, "Hypercalcemia")


async def test_results_of_the_batch_count_with_the_ae_that_arrives_beside_them(store, full, now) -> None:
    await run(store, full, now, inbound(calcium(), albumin(), hypercalcaemia()))
    assert await derived(store) == (1, "Hypercalcemia")


@pytest.mark.parametrize(
    ("second_reading", "alerts"),
    [("2026-05-08T09:00", 1), ("2026-05-09T09:00", 0)],
    ids=["7 days later: one window", "8 days later: outside it"],
)
async def test_a_repeated_pattern_reads_a_whole_window_of_stored_readings(
    store, full, now, second_reading: str, alerts: int
) -> None:
    # Two BP readings >= 160/100 within 7 days (rules/hypertension.yaml); the first one stored by an earlier batch.
    await run(store, full, now, inbound(vs(S1, "SYSBP", 165, at="2026-05-01T09:00")))
    outcome = await run(store, full, now, inbound(vs(S1, "SYSBP", 163, at=second_reading)))
    assert outcome.alerts_by_rule.get("hypertension-repeated-160-100", 0) == alerts


def alt(value: float, collected: str) -> dict[str, object]:
    return lb(S1, "ALT", value, LBSTRESU="U/L", LBSTNRLO=7, LBSTNRHI=40, LBDTC=collected)


async def test_a_late_baseline_that_grades_a_result_below_the_rule_withdraws_its_hit_and_updates_the_alert(
    store, full, now
) -> None:
    # ALT 130 U/L: 3.25 x ULN, grade 2 while no baseline is known; against the pre-dose baseline of 110 U/L that
    # arrives later, 1.18 x baseline: below grade 1 (CTCAE v5, abnormal baseline). The alert is kept, updated.
    first_dose = subject_event(S1, "FIRST_DOSE", "2026-04-01")
    await run(store, full, now, inbound(first_dose, alt(130, "2026-05-01T08:00")))
    key = f"alt-grade-2|{STUDY}|{S1}|LB:Alanine aminotransferase increased"
    async with store() as uow:
        assert (await uow.hits.occurrences([key])).keys() == {key}
    outcome = await run(store, full, now, inbound(alt(110, "2026-03-30T08:00")))
    assert outcome.regraded == 1
    async with store() as uow:
        assert await uow.hits.occurrences([key]) == {}
        alert = (await uow.alerts.get([key]))[key]
        changes = [c.kind.value for c in await uow.alerts.changes_since(None) if c.alert.key == key]
    assert (alert.status.value, alert.grade) == ("basis_removed", 2)
    assert sorted(changes) == ["basis_removed", "raised"]  # both at the same (fixed) time: no order to check
