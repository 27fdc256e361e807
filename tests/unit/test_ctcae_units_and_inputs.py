"""Boundary tables for the units and inputs admiral grades: counts in 1/uL and 10^3/mL, ionized calcium in
mg/dL, fibrinogen on the change from baseline; and the unit-typo flag. CTCAE v5 text above each table."""

from __future__ import annotations

import pytest

from safety_monitor.domain.baselines import baseline_from_change, change_from_baseline
from safety_monitor.domain.ctcae import CriteriaSet, Criterion
from safety_monitor.domain.grading import NotGradable
from safety_monitor.domain.plausibility import typo_screen
from tests.ctcae_tables import cases, grade

# --- 1. counts per microlitre ---------------------------------------------------------------------------------


# CTCAE v5 CD4 lymphocytes decreased: G1 <LLN - 500/mm3; G2 <500 - 200/mm3; G3 <200 - 50/mm3; G4 <50/mm3
# (admiral spells the unit 1/uL)
@cases((49, 4), (50, 3), (199, 3), (200, 2), (499, 2), (500, 1), (799, 1), (800, 0))
def test_cd4_per_microlitre(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "CD4 lymphocytes decreased", value, "1/uL", lln=800) == expected


# CTCAE v5 Platelet count decreased: G1 <LLN - 75,000/mm3; G2 <75,000 - 50,000/mm3; G3 <50,000 - 25,000/mm3;
# G4 <25,000/mm3. 10^3/mL = 10^3 per 1000 uL = 1/uL: the /mm3 thresholds apply unchanged.
@cases((24999, 4), (25000, 3), (49999, 3), (50000, 2), (74999, 2), (75000, 1), (149999, 1), (150000, 0))
def test_platelets_legacy_10e3_per_ml(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Platelet count decreased", value, "10^3/mL", lln=150000) == expected


# CTCAE v5 White blood cell decreased: G1 <LLN - 3000/mm3; G2 <3000 - 2000/mm3; G3 <2000 - 1000/mm3; G4 <1000/mm3
@cases((999, 4), (1000, 3), (1999, 3), (2000, 2), (2999, 2), (3000, 1), (3999, 1), (4000, 0))
def test_wbc_legacy_10e3_per_ml(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "White blood cell decreased", value, "10^3/mL", lln=4000) == expected


# CTCAE v5 Neutrophil count decreased: G1 <LLN - 1500/mm3; G2 <1500 - 1000/mm3; G3 <1000 - 500/mm3; G4 <500/mm3
@cases((499, 4), (500, 3), (999, 3), (1000, 2), (1499, 2), (1500, 1), (1999, 1), (2000, 0))
def test_neutrophils_legacy_10e3_per_ml(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Neutrophil count decreased", value, "10^3/mL", lln=2000) == expected


# CTCAE v5 Lymphocyte count decreased: G1 <LLN - 800/mm3; G2 <800 - 500/mm3; G3 <500 - 200/mm3; G4 <200/mm3
@cases((199, 4), (200, 3), (499, 3), (500, 2), (799, 2), (800, 1), (1099, 1), (1100, 0))
def test_lymphocytes_legacy_10e3_per_ml(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Lymphocyte count decreased", value, "10^3/mL", lln=1100) == expected


# CTCAE v5 Lymphocyte count increased: G2 >4000/mm3 - 20,000/mm3; G3 >20,000/mm3
@cases((4000, 0), (4001, 2), (20000, 2), (20001, 3))
def test_lymphocytes_increased_legacy_10e3_per_ml(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Lymphocyte count increased", value, "10^3/mL") == expected


# CTCAE v5 Leukocytosis: G3 >100,000/mm3
@cases((100000, 0), (100001, 3))
def test_leukocytosis_legacy_10e3_per_ml(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Leukocytosis", value, "10^3/mL") == expected


@pytest.mark.parametrize("unit", ["10^9/M", "10^8/L", "10^6/mL", "G/cL", ""])
def test_other_spellings_are_still_refused(criteria: CriteriaSet, unit: str) -> None:
    selected = criteria.select("Platelet count decreased", unit or None)
    assert isinstance(selected, NotGradable)
    assert "not accepted" in selected.reason


# --- the unit-typo flag ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test_code", "value", "flagged"),
    [
        ("PLAT", 5, True),  # 5 platelets per uL: 5 x 10^3/uL was meant
        ("PLAT", 999, True),
        ("PLAT", 1000, False),  # the lowest count analysers report
        ("PLAT", 24000, False),  # severe thrombocytopenia, plausible as sent
        ("PLAT", 0, False),  # 0 reads the same in every unit: no typo to suggest
        ("WBC", 2.5, True),
        ("WBC", 100, False),
        ("NEUT", 1.2, True),
        ("NEUT", 10, False),
        ("LYM", 0.4, True),
    ],
)
def test_implausible_value_in_10e3_per_ml_is_flagged(
    criteria: CriteriaSet, test_code: str, value: float, flagged: bool
) -> None:
    screen = typo_screen(criteria.test_codes[test_code], "10^3/mL")
    assert screen is not None
    assert bool(screen.caution(value)) is flagged


def test_flag_names_the_likely_unit_and_still_grades(criteria: CriteriaSet) -> None:
    screen = typo_screen(criteria.test_codes["PLAT"], "10^3/mL")
    assert screen is not None
    caution = screen.caution(5)
    assert "5 10^3/mL = 5 /uL" in caution
    assert "10^3/uL may have been meant (5 10^3/uL = 5000 /uL)" in caution
    # graded as sent: CTCAE G4 <25,000/mm3
    assert grade(criteria, "Platelet count decreased", 5, "10^3/mL", lln=150000) == 4


@pytest.mark.parametrize(
    ("test_code", "unit"), [("PLAT", "10^9/L"), ("PLAT", "/uL"), ("CD4", "10^3/mL"), ("ALT", "10^3/mL")]
)
def test_no_flag_outside_typo_prone_units_or_tests_without_a_floor(
    criteria: CriteriaSet, test_code: str, unit: str
) -> None:
    assert typo_screen(criteria.test_codes[test_code], unit) is None


# --- 2. ionized calcium in mg/dL ------------------------------------------------------------------------------


# CTCAE v5 Hypocalcemia: Ionized calcium G1 <LLN - 1.0 mmol/L; G2 <1.0 - 0.9 mmol/L; G3 <0.9 - 0.8 mmol/L;
# G4 <0.8 mmol/L. In mg/dL at admiral's factor 4 (mmol/L = mg/dL / 4): 4.0, 3.6, 3.2 mg/dL.
@cases((3.19, 4), (3.2, 3), (3.59, 3), (3.6, 2), (3.99, 2), (4.0, 1), (4.59, 1), (4.6, 0))
def test_hypocalcemia_ionized_mg_per_dl(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypocalcemia (Ionized)", value, "mg/dL", lln=4.6, uln=5.3) == expected


# CTCAE v5 Hypercalcemia: Ionized calcium G1 >ULN - 1.5 mmol/L; G2 >1.5 - 1.6 mmol/L; G3 >1.6 - 1.8 mmol/L;
# G4 >1.8 mmol/L. In mg/dL at factor 4: 6.0, 6.4, 7.2 mg/dL.
@cases((5.3, 0), (5.31, 1), (6.0, 1), (6.01, 2), (6.4, 2), (6.41, 3), (7.2, 3), (7.21, 4))
def test_hypercalcemia_ionized_mg_per_dl(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypercalcemia (Ionized)", value, "mg/dL", lln=4.6, uln=5.3) == expected


def test_ionized_mg_per_dl_cut_points_are_the_mmol_ones_times_4_with_the_source(criteria: CriteriaSet) -> None:
    for term in ("Hypocalcemia (Ionized)", "Hypercalcemia (Ionized)"):
        si, conventional = (criteria.select(term, unit) for unit in ("mmol/L", "mg/dL"))
        assert isinstance(si, Criterion) and isinstance(conventional, Criterion)
        si_cuts = [r.threshold.value for r in si.rules if r.threshold.value is not None]
        cv_cuts = [r.threshold.value for r in conventional.rules if r.threshold.value is not None]
        assert cv_cuts == [pytest.approx(4 * c) for c in si_cuts]
        assert "admiral" in conventional.comment and "4.008" in conventional.comment


# --- 3. percent change from baseline --------------------------------------------------------------------------


def test_baseline_from_change_inverts_adam_chg_and_pchg() -> None:
    assert baseline_from_change(1.0, None, -50) == 2.0
    assert baseline_from_change(1.0, -1.5, -10) == 2.5  # CHG is exact: it wins
    assert baseline_from_change(0.0, None, -100) is None  # a 100 % fall implies no baseline value
    assert baseline_from_change(1.0, None, None) is None
    assert change_from_baseline(1.0, 4.0) == (-3.0, -75.0)
    assert change_from_baseline(1.0, 0.0) == (1.0, None)


# CTCAE v5 Fibrinogen decreased: G1 <1.0 - 0.75 x LLN; if abnormal, <25% decrease from baseline; G2 <0.75 -
# 0.5 x LLN; if abnormal, 25 - <50% decrease from baseline; G3 <0.5 - 0.25 x LLN; if abnormal, 50 - <75%
# decrease from baseline; G4 <0.25 x LLN; if abnormal, 75% decrease from baseline; absolute value <50 mg/dL.
# Value 1.9 g/L with LLN 2.0 is abnormal (G1 by LLN); the decrease from baseline decides the rest.
@pytest.mark.parametrize(
    ("pchg", "expected"),
    [(-80, 4), (-75, 4), (-74.9, 3), (-50, 3), (-49.9, 2), (-25, 2), (-24.9, 1), (-5, 1), (10, 1)],
)
def test_fibrinogen_graded_on_pchg(criteria: CriteriaSet, pchg: float, expected: int) -> None:
    baseline = baseline_from_change(1.9, None, pchg)
    assert baseline is not None
    assert grade(criteria, "Fibrinogen decreased", 1.9, "g/L", lln=2.0, baseline=baseline) == expected
