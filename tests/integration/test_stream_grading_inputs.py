"""The stream grades what `grade-labs` grades: dipstick proteinuria from LBSTRESC (a same-day 24-hour urine protein
taking precedence), counts in admiral's units with the unit-typo flag in the alert, and the change from baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.domain.ctcae import SUPERSEDED_BY_24H
from safety_monitor.domain.grading import BloodPressureGrader, CombinedGrader, Graded, GradeResult, NotGradable
from safety_monitor.domain.lab_grader import CtcaeGrader
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from tests.conftest import RECIPIENTS
from tests.factories import STUDY, enrolled_and_dosed, inbound, lb, subject_id
from tests.harness import run

S1 = subject_id(1)
RULES = """\
rules:
  - id: proteinuria-grade-2
    title: Proteinuria grade >= 2
    when: {kind: lab, tests: [PROT], term: Proteinuria, grade_at_least: 2}
    severity: high
  - id: platelets-grade-4
    title: Platelet count decreased grade 4
    when: {kind: lab, tests: [PLAT], term: Platelet count decreased, grade_at_least: 4}
    severity: critical
"""


@pytest.fixture
def config(tmp_path: Path) -> PipelineConfig:
    (tmp_path / "labs.yaml").write_text(RULES)
    grader = CombinedGrader(BloodPressureGrader(), CtcaeGrader(load_criteria("5.0")))
    return PipelineConfig(load_ruleset(tmp_path), grader, RECIPIENTS)


def dipstick(reading: str, on: str) -> dict[str, Any]:
    return lb(
        S1, "PROT", None, LBSTRESU=None, LBSTNRLO=None, LBSTNRHI=None, LBNRIND=None, LBDTC=on, LBSPEC="URINE",
        LBSTRESC=reading,
    )  # fmt: skip


def urine_24h(grams: float, on: str) -> dict[str, Any]:
    return lb(S1, "PROT", grams, LBSTRESU="g/24h", LBSTNRLO=0, LBSTNRHI=0.15, LBNRIND=None, LBDTC=on, LBSPEC="URINE")


async def stored(store: UnitOfWorkFactory, test: str) -> dict[str, tuple[str | None, tuple[GradeResult, ...]]]:
    """msg_id -> (LBSTRESC as stored, grades) of every stored result of the test."""
    async with store() as uow:
        history = await uow.findings.history([(STUDY, S1, "LB", test)])
    return {s.finding.envelope.msg_id: (s.finding.result_text, s.grades) for s in history}


# CTCAE v5 Proteinuria: G1 "1+ proteinuria"; G2 "Adult: 2+ and 3+ proteinuria"; G3 "Adult: ... 4+ proteinuria"
@pytest.mark.parametrize(("reading", "grade"), [("NEG", 0), ("TRACE", 0), ("1+", 1), ("2+", 2), ("3+", 2), ("4+", 3)])
async def test_dipstick_from_lbstresc_is_graded_and_kept(store, config, now, reading: str, grade: int) -> None:
    message = dipstick(reading, "2026-04-01T08:00")
    outcome = await run(store, config, now, inbound(*enrolled_and_dosed(S1), message))
    text, grades = (await stored(store, "PROT"))[message["msg_id"]]
    assert text == reading
    assert grades == (Graded("Proteinuria", grade, "5.0"),)
    assert outcome.alerts_by_rule == ({"proteinuria-grade-2": 1} if grade >= 2 else {})


async def test_an_unknown_dipstick_reading_cannot_be_graded(store, config, now) -> None:
    message = dipstick("++", "2026-04-01T08:00")
    await run(store, config, now, inbound(*enrolled_and_dosed(S1), message))
    (result,) = (await stored(store, "PROT"))[message["msg_id"]][1]
    assert isinstance(result, NotGradable) and "is not on the scale" in result.reason


# CTCAE v5 Proteinuria, navigational note: "24-hour urine collection takes precedence over dipstick".
# G1 urinary protein >=ULN - <1.0 g/24 hrs.
async def test_a_later_24h_urine_protein_supersedes_the_same_day_dipstick(store, config, now) -> None:
    strip = dipstick("3+", "2026-04-01T08:00")
    other_day = dipstick("2+", "2026-04-02T08:00")
    first = await run(store, config, now, inbound(*enrolled_and_dosed(S1), strip, other_day))
    assert first.alerts_by_rule == {"proteinuria-grade-2": 1}

    collection = urine_24h(0.6, "2026-04-01T20:00")
    second = await run(store, config, now, inbound(collection))
    assert second.regraded == 1
    results = await stored(store, "PROT")
    assert results[strip["msg_id"]][1] == (NotGradable("Proteinuria", SUPERSEDED_BY_24H, "5.0"),)
    assert results[other_day["msg_id"]][1] == (Graded("Proteinuria", 2, "5.0"),)  # another day: stands
    assert results[collection["msg_id"]][1] == (Graded("Proteinuria", 1, "5.0"),)


async def test_a_24h_urine_protein_already_stored_supersedes_a_dipstick_arriving_later(store, config, now) -> None:
    await run(store, config, now, inbound(*enrolled_and_dosed(S1), urine_24h(0.6, "2026-04-01T20:00")))
    strip = dipstick("3+", "2026-04-01T08:00")
    outcome = await run(store, config, now, inbound(strip))
    assert (await stored(store, "PROT"))[strip["msg_id"]][1] == (NotGradable("Proteinuria", SUPERSEDED_BY_24H, "5.0"),)
    assert outcome.alerts_by_rule == {}


async def test_dipstick_and_24h_in_one_batch(store, config, now) -> None:
    strip, collection = dipstick("2+", "2026-04-01T08:00"), urine_24h(3.6, "2026-04-01T20:00")
    outcome = await run(store, config, now, inbound(*enrolled_and_dosed(S1), strip, collection))
    results = await stored(store, "PROT")
    assert results[strip["msg_id"]][1] == (NotGradable("Proteinuria", SUPERSEDED_BY_24H, "5.0"),)
    assert results[collection["msg_id"]][1] == (Graded("Proteinuria", 3, "5.0"),)  # >=3.5 g/24 hrs: G3
    assert outcome.alerts_by_rule == {"proteinuria-grade-2": 1}


# CTCAE v5 Platelet count decreased: G4 <25,000/mm3; 10^3/mL = /mm3. 5 x 10^3/mL (5/uL) is graded G4 as sent,
# and the alert says to check the unit: 5 x 10^3/uL was probably meant.
async def test_implausible_platelets_in_10e3_per_ml_alert_with_a_unit_check(store, config, now) -> None:
    message = lb(S1, "PLAT", 5, LBSTRESU="10^3/mL", LBSTNRLO=150, LBSTNRHI=400, LBNRIND="LOW")
    outcome = await run(store, config, now, inbound(*enrolled_and_dosed(S1), message))
    assert outcome.alerts_by_rule == {"platelets-grade-4": 1}
    (graded,) = (await stored(store, "PLAT"))[message["msg_id"]][1]
    assert isinstance(graded, Graded) and graded.grade == 4
    assert graded.caution.startswith("unit check: PLAT 5 10^3/mL = 5 /uL, implausible")
    async with store() as uow:
        pending = await uow.notifications.pending()
    assert pending and all("10^3/uL may have been meant" in str(n.context["detail"]) for n in pending)


async def test_plausible_platelets_in_10e3_per_ml_alert_without_a_unit_check(store, config, now) -> None:
    message = lb(S1, "PLAT", 20000, LBSTRESU="10^3/mL", LBSTNRLO=150000, LBSTNRHI=400000, LBNRIND="LOW")
    outcome = await run(store, config, now, inbound(*enrolled_and_dosed(S1), message))
    assert outcome.alerts_by_rule == {"platelets-grade-4": 1}
    (graded,) = (await stored(store, "PLAT"))[message["msg_id"]][1]
    assert isinstance(graded, Graded) and (graded.grade, graded.caution) == (4, "")


# CTCAE v5 Fibrinogen decreased: G3 "<0.5 - 0.25 x LLN; if abnormal, 50 - <75% decrease from baseline".
# The stream holds the baseline; it derives the percent change (ADaM PCHG) that grade-labs reads from a file.
async def test_fibrinogen_decrease_from_the_baseline_the_stream_holds(store, config, now) -> None:
    def fibrinogen(value: float, on: str, **extra: Any) -> dict[str, Any]:
        return lb(S1, "FIBRINO", value, LBSTRESU="g/L", LBSTNRLO=2.0, LBSTNRHI=4.0, LBNRIND=None, LBDTC=on, **extra)

    base, later = fibrinogen(4.0, "2026-02-28T08:00", LBBLFL="Y"), fibrinogen(1.9, "2026-04-01T08:00")
    await run(store, config, now, inbound(*enrolled_and_dosed(S1), base, later))
    (graded,) = (await stored(store, "FIBRINO"))[later["msg_id"]][1]
    assert isinstance(graded, Graded) and graded.grade == 3  # 52.5 % below the baseline, value below LLN
    assert "PCHG -52.5%, CHG -2.1 from baseline 4" in graded.note
