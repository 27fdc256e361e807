"""CTCAE grading semantics: baseline-aware liver tests, unit refusal, missing inputs, precedence, provisional."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from safety_monitor.domain.ctcae import (
    SUPERSEDED_BY_24H,
    BaselineCandidate,
    CriteriaSet,
    Criterion,
    corrected_calcium,
    derive_baselines,
    grade_ordinal,
    grade_value,
    proteinuria_grade,
)
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.grading import Graded, NotGradable
from safety_monitor.domain.lab_grader import CtcaeGrader
from safety_monitor.domain.messages import Envelope, Finding, MessageType

ALT = "Alanine aminotransferase increased"


def criterion(criteria: CriteriaSet, term: str, unit: str) -> Criterion:
    found = criteria.select(term, unit)
    assert isinstance(found, Criterion), found
    return found


def finding(
    test: str,
    value: float | None,
    unit: str | None,
    *,
    lln: float | None = None,
    uln: float | None = None,
    nrind: str | None = None,
    domain: MessageType = MessageType.LB,
    specimen: str | None = None,
    when: str = "2024-03-01",
) -> Finding:
    env = Envelope("m1", domain, datetime(2024, 3, 1, tzinfo=UTC), "site", 1, "ST", "S1")
    return Finding(env, test, value, unit, PartialDate.parse(when), False, lln, uln, nrind, None, specimen)


# --- baseline-aware liver grading (CTCAE: "x baseline if baseline was abnormal"; admiral BNRIND HIGH) ---


def test_liver_baseline_high_grades_against_baseline(criteria: CriteriaSet) -> None:
    alt = criterion(criteria, ALT, "U/L")
    # 130 U/L is > 3 x ULN (grade 2 against ULN 40) but only 1.3 x a high baseline of 100: grade 0
    assert grade_value(alt, 130, "U/L", None, 40, 100, True) == Graded(ALT, 0, "5.0")
    result = grade_value(alt, 150, "U/L", None, 40, 100, True)
    assert isinstance(result, Graded)
    assert (result.grade, result.provisional) == (1, False)
    assert "baseline" in result.note


def test_liver_normal_baseline_grades_against_uln(criteria: CriteriaSet) -> None:
    alt = criterion(criteria, ALT, "U/L")
    result = grade_value(alt, 130, "U/L", None, 40, 30, False)
    assert isinstance(result, Graded)
    assert (result.grade, result.provisional) == (2, False)


def test_liver_unknown_baseline_is_worst_case_and_provisional(criteria: CriteriaSet) -> None:
    result = grade_value(criterion(criteria, ALT, "U/L"), 130, "U/L", None, 40, None, None)
    assert isinstance(result, Graded)
    assert (result.grade, result.provisional) == (2, True)
    assert "baseline unknown" in result.note


def test_liver_high_baseline_without_value_cannot_grade(criteria: CriteriaSet) -> None:
    result = grade_value(criterion(criteria, ALT, "U/L"), 130, "U/L", None, 40, None, True)
    assert isinstance(result, NotGradable)


def test_grader_derives_baseline_high_from_baseline_record(criteria: CriteriaSet) -> None:
    grader = CtcaeGrader(criteria)
    base = finding("ALT", 100, "U/L", uln=40, nrind="HIGH")
    (result,) = grader.grade(finding("ALT", 130, "U/L", uln=40), base)
    assert result == Graded(ALT, 0, "5.0")
    # baseline value above its ULN counts as high even without LBNRIND
    (result,) = grader.grade(finding("ALT", 130, "U/L", uln=40), finding("ALT", 100, "U/L", uln=40))
    assert result == Graded(ALT, 0, "5.0")


# --- unit refusal ---------------------------------------------------------------------------------------


def test_unit_not_accepted_is_not_gradable_never_zero(criteria: CriteriaSet) -> None:
    refused = criteria.select("Hypokalemia", "mg/dL")
    assert isinstance(refused, NotGradable)
    assert refused.reason.startswith("unit mg/dL not accepted for Hypokalemia")
    k = criterion(criteria, "Hypokalemia", "mmol/L")
    result = grade_value(k, 2.0, "mg/dL", 3.5, 5.1)
    assert isinstance(result, NotGradable)
    assert "mg/dL" in result.reason


@pytest.mark.parametrize("unit", ["mmol/L", "MMOL/L", "mmol/l", " mmol/L "], ids=["exact", "upper", "lower", "pad"])
def test_units_match_case_insensitively(criteria: CriteriaSet, unit: str) -> None:
    result = grade_value(criterion(criteria, "Hypokalemia", unit), 2.4, unit, 3.5, 5.1)
    assert isinstance(result, Graded)
    assert result.grade == 4


def test_si_and_conventional_are_different_records(criteria: CriteriaSet) -> None:
    si = criterion(criteria, "Hypercalcemia", "mmol/L")
    cv = criterion(criteria, "Hypercalcemia", "mg/dL")
    assert (si.unit_system, cv.unit_system) == ("SI", "conventional")


def test_missing_unit_refused_for_unit_bound_term(criteria: CriteriaSet) -> None:
    refused = criteria.select("Anemia", None)
    assert isinstance(refused, NotGradable)
    assert "no unit" in refused.reason


def test_grader_refuses_unknown_unit(criteria: CriteriaSet) -> None:
    results = CtcaeGrader(criteria).grade(finding("K", 4.0, "furlongs", lln=3.5, uln=5.1), None)
    assert all(isinstance(r, NotGradable) for r in results)
    assert [r.term for r in results] == ["Hypokalemia", "Hyperkalemia"]


# --- missing inputs -------------------------------------------------------------------------------------


def test_missing_value_is_not_gradable(criteria: CriteriaSet) -> None:
    result = grade_value(criterion(criteria, "Hypokalemia", "mmol/L"), None, "mmol/L", 3.5, 5.1)
    assert result == NotGradable("Hypokalemia", "no numeric result", "5.0")


def test_missing_lln_blocks_only_the_grades_that_need_it(criteria: CriteriaSet) -> None:
    anemia = criterion(criteria, "Anemia", "g/L")
    assert grade_value(anemia, 75, "g/L", None, None) == Graded("Anemia", 3, "5.0")
    result = grade_value(anemia, 110, "g/L", None, None)
    assert isinstance(result, NotGradable)
    assert result.reason == "LLN missing: needed for grade 1 of Anemia"


def test_missing_uln_for_uln_multiples(criteria: CriteriaSet) -> None:
    result = grade_value(criterion(criteria, ALT, "U/L"), 500, "U/L", None, None, None, False)
    assert isinstance(result, NotGradable)
    assert "ULN missing" in result.reason


def test_inr_without_baseline_cannot_rule_out_grade_1(criteria: CriteriaSet) -> None:
    inr = criterion(criteria, "INR increased", "")
    assert grade_value(inr, 1.6, "", None, None, None) == Graded("INR increased", 2, "5.0")
    assert isinstance(grade_value(inr, 1.1, "", None, None, None), NotGradable)


# --- provisional (worst-case assumptions, admiral) --------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "unit", "value", "lln", "uln", "grade", "provisional"),
    [
        ("Hyponatremia", "mmol/L", 127, 135, 145, 3, True),
        ("Hyponatremia", "mmol/L", 122, 135, 145, 3, False),
        ("Hypokalemia", "mmol/L", 3.2, 3.5, 5.1, 2, True),
        ("Lipase increased", "U/L", 150, None, 60, 3, True),
        ("Lipase increased", "U/L", 100, None, 60, 2, False),
        ("Serum amylase increased", "U/L", 600, None, 100, 4, True),
        ("Hyperuricemia", "umol/L", 500, None, 420, 3, True),
        ("Thyroid stimulating hormone increased", "mU/L", 9, None, 4, 1, True),
        ("Electrocardiogram QT corrected interval prolonged", "ms", 470, None, None, 1, True),
    ],
    ids=["Na127", "Na122", "K3.2", "lipase2.5x", "lipase1.7x", "amylase6x", "urate", "tsh", "qtcf"],
)
def test_provisional_flags(
    criteria: CriteriaSet,
    term: str,
    unit: str,
    value: float,
    lln: float | None,
    uln: float | None,
    grade: int,
    provisional: bool,
) -> None:
    result = grade_value(criterion(criteria, term, unit), value, unit, lln, uln)
    assert isinstance(result, Graded)
    assert (result.grade, result.provisional) == (grade, provisional)
    assert bool(result.note) == provisional


def test_inr_against_baseline_is_provisional(criteria: CriteriaSet) -> None:
    result = grade_value(criterion(criteria, "INR increased", ""), 1.15, "", None, None, 1.0)
    assert isinstance(result, Graded)
    assert (result.grade, result.provisional) == (1, True)
    assert "anticoagulation" in result.note


# --- fixed precision ------------------------------------------------------------------------------------


def test_value_exactly_at_a_computed_cut_point(criteria: CriteriaSet) -> None:
    alt = criterion(criteria, ALT, "U/L")
    # 3 * 0.1 is 0.30000000000000004 in binary; CTCAE ">3.0 x ULN" must not hold for 0.3
    assert grade_value(alt, 0.3, "U/L", None, 0.1, None, False) == Graded(ALT, 1, "5.0")
    assert grade_value(alt, 0.3000001, "U/L", None, 0.1, None, False) == Graded(ALT, 1, "5.0")
    assert grade_value(alt, 0.300001, "U/L", None, 0.1, None, False) == Graded(ALT, 2, "5.0")
    bili = criterion(criteria, "Blood bilirubin increased", "umol/L")
    assert grade_value(bili, 1.1 * 1.5, "umol/L", None, 1.1, None, False).grade == 1  # type: ignore[union-attr]


def test_value_from_float_arithmetic_at_an_absolute_cut_point(criteria: CriteriaSet) -> None:
    k = criterion(criteria, "Hypokalemia", "mmol/L")
    assert grade_value(k, 0.1 + 2.4, "mmol/L", 3.5, 5.1) == Graded("Hypokalemia", 3, "5.0")  # 2.5000000000000004


# --- proteinuria precedence ------------------------------------------------------------------------------


def test_dipstick_ordinal(criteria: CriteriaSet) -> None:
    dip = criteria.ordinal_for("Proteinuria")
    assert dip is not None
    grades = [grade_ordinal(dip, t) for t in ("negative", "TRACE", "1+", "2+", "3+", "4+")]
    assert [g.grade for g in grades if isinstance(g, Graded)] == [0, 0, 1, 2, 2, 3]
    assert isinstance(grade_ordinal(dip, "5+"), NotGradable)


def test_24h_urine_takes_precedence_over_dipstick(criteria: CriteriaSet) -> None:
    dip = criteria.ordinal_for("Proteinuria")
    assert dip is not None
    dipstick = grade_ordinal(dip, "3+")
    urine = grade_value(criterion(criteria, "Proteinuria", "g/24h"), 0.5, "g/24h", None, 0.15)
    assert proteinuria_grade(dipstick, urine) == Graded("Proteinuria", 1, "5.0")
    assert proteinuria_grade(dipstick, None) == dipstick
    refused = NotGradable("Proteinuria", "unit", "5.0")
    assert proteinuria_grade(dipstick, refused) == dipstick
    assert "24-hour" in SUPERSEDED_BY_24H


def test_serum_protein_is_not_proteinuria(criteria: CriteriaSet) -> None:
    assert CtcaeGrader(criteria).grade(finding("PROT", 70, "g/L", specimen="SERUM"), None) == ()


# --- the FindingGrader ----------------------------------------------------------------------------------


def test_grader_skips_vitals_and_unknown_codes(criteria: CriteriaSet) -> None:
    grader = CtcaeGrader(criteria)
    assert grader.ctcae_version == "5.0"
    assert grader.grade(finding("SYSBP", 170, "mmHg", domain=MessageType.VS), None) == ()
    assert grader.grade(finding("XYZ", 1, "U/L"), None) == ()


def test_grader_qtcf_change_from_baseline(criteria: CriteriaSet) -> None:
    grader = CtcaeGrader(criteria)
    ecg = finding("QTCF", 470, "ms", domain=MessageType.EG)
    (result,) = grader.grade(ecg, finding("QTCF", 405, "ms", domain=MessageType.EG))
    assert isinstance(result, Graded)
    assert (result.grade, result.provisional) == (3, True)


def test_grader_ph_needs_blood_specimen(criteria: CriteriaSet) -> None:
    grader = CtcaeGrader(criteria)
    unknown = grader.grade(finding("PH", 7.2, None, lln=7.35, uln=7.45), None)
    assert all(isinstance(r, NotGradable) for r in unknown)
    assert grader.grade(finding("PH", 6.0, None, specimen="URINE"), None) == ()
    low, high = grader.grade(finding("PH", 7.2, None, lln=7.35, uln=7.45, specimen="ARTERIAL BLOOD"), None)
    assert (low, high) == (Graded("Acidosis", 3, "5.0"), Graded("Alkalosis", 0, "5.0"))


def test_grader_corrects_calcium_with_same_draw_albumin(criteria: CriteriaSet) -> None:
    grader = CtcaeGrader(criteria)
    ca = finding("CA", 1.95, "mmol/L", lln=2.3, uln=2.6)
    low, _ = grader.grade(ca, None)
    assert isinstance(low, Graded)
    assert low.grade == 2 and "uncorrected" in low.note
    low, _ = grader.grade(ca, None, albumin=finding("ALB", 25, "g/L"))
    assert isinstance(low, Graded)
    assert low.grade == 1 and "albumin-corrected calcium 2.25" in low.note  # 1.95 + 0.02 x (40 - 25)


def test_corrected_calcium_refuses_unpaired_units() -> None:
    assert corrected_calcium(9.0, "mg/dL", 3.0, "g/dL") == pytest.approx(9.8)
    assert corrected_calcium(2.0, "mmol/L", 3.0, "g/dL") is None


def test_grader_flags_tsh_with_low_ft4(criteria: CriteriaSet) -> None:
    grader = CtcaeGrader(criteria)
    tsh = finding("TSH", 9, "mU/L", lln=0.4, uln=4)
    (result,) = grader.grade(tsh, None, ft4=finding("FT4", 8, "pmol/L", lln=12, uln=22))
    assert isinstance(result, Graded)
    assert result.grade == 1 and "FT4 below LLN" in result.note
    (result,) = grader.grade(tsh, None, ft4=finding("FT4", 15, "pmol/L", lln=12, uln=22))
    assert isinstance(result, Graded)
    assert "FT4" not in result.note


# --- baseline derivation --------------------------------------------------------------------------------


def cand(subject: str, flagged: bool, when: str | None, item: str) -> BaselineCandidate[str]:
    return BaselineCandidate(subject, "ALT", flagged, PartialDate.parse(when) if when else None, item)


def test_flagged_baseline_wins() -> None:
    got = derive_baselines(
        [cand("S1", False, "2024-01-05", "pre"), cand("S1", True, "2024-01-01", "flag")],
        {"S1": date(2024, 1, 10)},
    )
    assert got == {("S1", "ALT"): "flag"}


def test_last_value_on_or_before_first_dose() -> None:
    got = derive_baselines(
        [
            cand("S1", False, "2024-01-02", "early"),
            cand("S1", False, "2024-01-10T07:00", "dose-day"),
            cand("S1", False, "2024-01-11", "after"),
            cand("S1", False, "2024-01", "undecidable"),
            cand("S2", False, "2024-01-02", "no-dose-known"),
        ],
        {"S1": date(2024, 1, 10)},
    )
    assert got == {("S1", "ALT"): "dose-day"}
