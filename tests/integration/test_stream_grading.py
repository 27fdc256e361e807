"""CTCAE grading inside the pipeline: baselines, late baselines and first doses, same-draw albumin, rules."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.domain.grading import BloodPressureGrader, CombinedGrader, Graded
from safety_monitor.domain.lab_grader import CtcaeGrader
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from tests.conftest import RECIPIENTS
from tests.factories import STUDY, enrolled_and_dosed, inbound, lb, subject_event, subject_id
from tests.harness import run

S1 = subject_id(1)
ALT_RULE = """\
rules:
  - id: alt-grade-2
    title: ALT increased grade >= 2
    when: {kind: lab, tests: [ALT], term: Alanine aminotransferase increased, grade_at_least: 2}
    severity: high
  - id: alt-grade-3
    title: ALT increased grade >= 3
    when: {kind: lab, tests: [ALT], term: Alanine aminotransferase increased, grade_at_least: 3}
    severity: high
"""


@pytest.fixture
def lab_config(tmp_path: Path) -> PipelineConfig:
    (tmp_path / "labs.yaml").write_text(ALT_RULE)
    criteria = load_criteria("5.0")
    grader = CombinedGrader(BloodPressureGrader(), CtcaeGrader(criteria))
    return PipelineConfig(load_ruleset(tmp_path), grader, RECIPIENTS)


def alt(value: float, on: str, **extra: Any) -> dict[str, Any]:
    return lb(S1, "ALT", value, LBDTC=on, LBNRIND="HIGH" if value > 40 else "NORMAL", **extra)


async def grades(store: UnitOfWorkFactory, test: str = "ALT") -> dict[str, tuple[int, bool, str | None]]:
    """collection date -> (grade of the first graded term, provisional, baseline msg id)."""
    async with store() as uow:
        history = await uow.findings.history([(STUDY, S1, "LB", test)])
    result = {}
    for stored in history:
        graded = [g for g in stored.grades if isinstance(g, Graded)]
        top = max(graded, key=lambda g: g.grade)
        result[stored.finding.collected_at.text] = (top.grade, top.provisional, stored.baseline_msg_id)
    return result


async def test_a_flagged_high_baseline_grades_liver_tests_against_the_baseline(store, lab_config, now) -> None:
    baseline = alt(80, "2026-02-28T08:00", LBBLFL="Y")
    outcome = await run(
        store, lab_config, now, inbound(*enrolled_and_dosed(S1), baseline, alt(250, "2026-04-01T08:00"))
    )
    # CTCAE v5 ALT increased, baseline abnormal: G2 >3.0-5.0 x baseline; 250 > 3 x 80 but not > 5 x 80.
    assert (await grades(store))["2026-04-01T08:00"] == (2, False, baseline["msg_id"])
    assert outcome.alerts_by_rule == {"alt-grade-2": 1}


async def test_a_late_baseline_regrades_earlier_results(store, lab_config, now) -> None:
    first = await run(store, lab_config, now, inbound(*enrolled_and_dosed(S1), alt(250, "2026-04-01T08:00")))
    # No baseline yet: graded against ULN, the worst case (250 > 5 x 40 -> G3), and marked provisional.
    assert (await grades(store))["2026-04-01T08:00"] == (3, True, None)
    assert first.alerts_by_rule == {"alt-grade-2": 1, "alt-grade-3": 1}

    baseline = alt(80, "2026-02-28T08:00", LBBLFL="Y")
    second = await run(store, lab_config, now, inbound(baseline))
    assert second.regraded == 1
    assert (await grades(store))["2026-04-01T08:00"] == (2, False, baseline["msg_id"])
    # Alerts are kept, never silently withdrawn. The grade 3 alert rested on a provisional grade the baseline
    # corrected: it gets an update (basis removed); the grade 2 alert still holds and sends nothing new.
    assert [(n.kind, n.alert_key.split("|")[0]) for n in second.written_notices] == [("basis_removed", "alt-grade-3")]
    async with store() as uow:
        alerts = await uow.alerts.get(
            [
                n.alert_key.replace("alt-grade-3", rule)
                for n in second.written_notices
                for rule in ("alt-grade-2", "alt-grade-3")
            ]
        )
    assert sorted((a.rule_id, a.status.value) for a in alerts.values()) == [
        ("alt-grade-2", "open"),
        ("alt-grade-3", "basis_removed"),
    ]


async def test_a_late_first_dose_makes_the_last_pre_dose_value_the_baseline(store, lab_config, now) -> None:
    pre_dose = alt(80, "2026-03-01T08:00")
    await run(store, lab_config, now, inbound(subject_event(S1, "ENROLLED", "2026-02-27", drug=None), pre_dose))
    await run(store, lab_config, now, inbound(alt(250, "2026-04-01T08:00")))
    assert (await grades(store))["2026-04-01T08:00"][0] == 3

    outcome = await run(store, lab_config, now, inbound(subject_event(S1, "FIRST_DOSE", "2026-03-02")))
    assert outcome.regraded >= 1
    assert (await grades(store))["2026-04-01T08:00"] == (2, False, pre_dose["msg_id"])


async def test_a_baseline_arriving_first_raises_nothing_again_on_redelivery(store, lab_config, now) -> None:
    batch = inbound(*enrolled_and_dosed(S1), alt(80, "2026-02-28T08:00", LBBLFL="Y"), alt(500, "2026-04-01T08:00"))
    first = await run(store, lab_config, now, batch)
    again = await run(store, lab_config, now, batch)
    assert first.alerts_by_rule == {"alt-grade-2": 1, "alt-grade-3": 1}  # 500 > 5 x 80: G3
    assert (again.applied, again.regraded, again.notices) == (0, 0, 0)


async def test_albumin_from_the_same_draw_corrects_calcium_even_when_it_arrives_later(store, lab_config, now) -> None:
    draw = "2026-04-01T08:00"
    calcium = lb(S1, "CA", 2.4, LBSTRESU="mmol/L", LBSTNRLO=2.2, LBSTNRHI=2.6, LBNRIND="NORMAL", LBDTC=draw)
    albumin = lb(S1, "ALB", 25, LBSTRESU="g/L", LBSTNRLO=35, LBSTNRHI=50, LBNRIND="LOW", LBDTC=draw)
    await run(store, lab_config, now, inbound(calcium))
    assert (await grades(store, "CA"))[draw][0] == 0
    outcome = await run(store, lab_config, now, inbound(albumin))
    assert outcome.regraded == 1
    # Corrected Ca = 2.4 + 0.02 x (40 - 25) = 2.7 mmol/L > ULN 2.6: Hypercalcemia grade 1.
    assert (await grades(store, "CA"))[draw][0] == 1


async def test_qtcf_more_than_60_ms_over_baseline_is_grade_3(store, lab_config, now: datetime) -> None:
    def qtcf(value: float, on: str, flag: str | None = None) -> dict[str, Any]:
        message = lb(S1, "X", 0)
        keep = {k: message[k] for k in ("msg_id", "sent_at", "site_id", "record_version", "STUDYID", "USUBJID")}
        return keep | {
            "msg_type": "EG",
            "EGTESTCD": "QTCF",
            "EGSTRESN": value,
            "EGSTRESU": "ms",
            "EGDTC": on,
            "EGBLFL": flag,
        }

    await run(store, lab_config, now, inbound(qtcf(420, "2026-02-28T08:00", "Y"), qtcf(485, "2026-04-01T08:00")))
    async with store() as uow:
        (later,) = [s for s in await uow.findings.history([(STUDY, S1, "EG", "QTCF")]) if s.finding.value == 485]
    (grade,) = later.grades
    # CTCAE v5 QT corrected interval prolonged G3: QTc >= 501 ms or > 60 ms change from baseline.
    assert isinstance(grade, Graded) and grade.grade == 3
