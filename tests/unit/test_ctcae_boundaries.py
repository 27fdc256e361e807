"""Boundary tables for the CTCAE v5 criteria data: each cut point and both sides of it, per unit system."""

from __future__ import annotations

from safety_monitor.domain.ctcae import CriteriaSet
from tests.ctcae_tables import cases, grade


# CTCAE v5 Hypokalemia: G1 <LLN - 3.0 mmol/L; G2 Symptomatic with <LLN - 3.0 mmol/L; G3 <3.0 - 2.5 mmol/L;
# G4 <2.5 mmol/L (admiral: <LLN graded 2, worst case "symptomatic").
@cases((2.49, 4), (2.5, 3), (2.99, 3), (3.0, 2), (3.49, 2), (3.5, 0))
def test_hypokalemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypokalemia", value, "mmol/L", lln=3.5, uln=5.1) == expected


# CTCAE v5 Hyperkalemia: G1 >ULN - 5.5; G2 >5.5 - 6.0; G3 >6.0 - 7.0; G4 >7.0 mmol/L
@cases((5.1, 0), (5.11, 1), (5.5, 1), (5.51, 2), (6.0, 2), (6.01, 3), (7.0, 3), (7.01, 4))
def test_hyperkalemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hyperkalemia", value, "mmol/L", lln=3.5, uln=5.1) == expected


# CTCAE v5 Hyponatremia: G1 <LLN - 130; G2 125-129 and asymptomatic; G3 125-129 symptomatic, 120-124;
# G4 <120 mmol/L (admiral: <=129 graded 3, worst case "symptomatic")
@cases((119.9, 4), (120, 3), (124, 3), (125, 3), (129, 3), (129.5, 1), (130, 1), (134.9, 1), (135, 0))
def test_hyponatremia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hyponatremia", value, "mmol/L", lln=135, uln=145) == expected


# CTCAE v5 Hypernatremia: G1 >ULN - 150; G2 >150 - 155; G3 >155 - 160; G4 >160 mmol/L
@cases((145, 0), (145.1, 1), (150, 1), (150.1, 2), (155, 2), (155.1, 3), (160, 3), (160.1, 4))
def test_hypernatremia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypernatremia", value, "mmol/L", lln=135, uln=145) == expected


# CTCAE v5 Anemia: Hgb <LLN - 100 g/L; <100 - 80 g/L; <80 g/L (grades 4-5 clinical)
@cases((79.9, 3), (80, 2), (99.9, 2), (100, 1), (119.9, 1), (120, 0))
def test_anemia_si_g_per_l(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Anemia", value, "g/L", lln=120, uln=160) == expected


# CTCAE v5 Anemia: <LLN - 6.2 mmol/L; <6.2 - 4.9 mmol/L; <4.9 mmol/L
@cases((4.89, 3), (4.9, 2), (6.19, 2), (6.2, 1), (7.4, 0))
def test_anemia_si_mmol(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Anemia", value, "mmol/L", lln=7.4, uln=9.9) == expected


# CTCAE v5 Anemia: Hgb <LLN - 10.0 g/dL; <10.0 - 8.0 g/dL; <8.0 g/dL
@cases((7.99, 3), (8.0, 2), (9.99, 2), (10.0, 1), (12.0, 0))
def test_anemia_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Anemia", value, "g/dL", lln=12.0, uln=16.0) == expected


# CTCAE v5 Hemoglobin increased: Increase in >0 - 2 g/dL; >2 - 4 g/dL; >4 g/dL (above ULN, admiral)
@cases((160, 0), (160.1, 1), (180, 1), (180.1, 2), (200, 2), (200.1, 3))
def test_hemoglobin_increased_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hemoglobin increased", value, "g/L", lln=120, uln=160) == expected


# CTCAE v5 Platelet count decreased: <LLN - 75.0; <75.0 - 50.0; <50.0 - 25.0; <25.0 x 10e9 /L
@cases((24.9, 4), (25, 3), (49.9, 3), (50, 2), (74.9, 2), (75, 1), (149, 1), (150, 0))
def test_platelets_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Platelet count decreased", value, "10^9/L", lln=150, uln=400) == expected


# CTCAE v5 Platelet count decreased: <LLN - 75,000/mm3; <75,000 - 50,000; <50,000 - 25,000; <25,000/mm3
@cases((24999, 4), (25000, 3), (49999, 3), (50000, 2), (74999, 2), (75000, 1), (150000, 0))
def test_platelets_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Platelet count decreased", value, "/mm3", lln=150000, uln=400000) == expected


# CTCAE v5 Neutrophil count decreased: <LLN - 1.5; <1.5 - 1.0; <1.0 - 0.5; <0.5 x 10e9 /L
@cases((0.49, 4), (0.5, 3), (0.99, 3), (1.0, 2), (1.49, 2), (1.5, 1), (1.8, 0))
def test_neutrophils_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Neutrophil count decreased", value, "10^9/L", lln=1.8, uln=7.5) == expected


# CTCAE v5 White blood cell decreased: <LLN - 3.0; <3.0 - 2.0; <2.0 - 1.0; <1.0 x 10e9 /L
@cases((0.99, 4), (1.0, 3), (1.99, 3), (2.0, 2), (2.99, 2), (3.0, 1), (4.0, 0))
def test_wbc_decreased_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "White blood cell decreased", value, "10^9/L", lln=4.0, uln=10.0) == expected


# CTCAE v5 Leukocytosis: G3 >100,000/mm3
@cases((100, 0), (100.01, 3))
def test_leukocytosis_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Leukocytosis", value, "10^9/L", lln=4.0, uln=10.0) == expected


# CTCAE v5 Lymphocyte count decreased: <LLN - 0.8; <0.8 - 0.5; <0.5 - 0.2; <0.2 x 10e9 /L
@cases((0.19, 4), (0.2, 3), (0.49, 3), (0.5, 2), (0.79, 2), (0.8, 1), (1.0, 0))
def test_lymphocytes_decreased_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Lymphocyte count decreased", value, "10^9/L", lln=1.0, uln=4.0) == expected


# CTCAE v5 Lymphocyte count increased: G2 >4000/mm3 - 20,000/mm3; G3 >20,000/mm3
@cases((4, 0), (4.01, 2), (20, 2), (20.01, 3))
def test_lymphocytes_increased_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Lymphocyte count increased", value, "10^9/L", lln=1.0, uln=4.0) == expected


# CTCAE v5 CD4 lymphocytes decreased: <LLN - 0.5; <0.5 - 0.2; <0.2 - 0.05; <0.05 x 10e9 /L
@cases((0.049, 4), (0.05, 3), (0.199, 3), (0.2, 2), (0.499, 2), (0.5, 1), (0.6, 0))
def test_cd4_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "CD4 lymphocytes decreased", value, "10^9/L", lln=0.6, uln=1.6) == expected


# CTCAE v5 ALT increased (baseline normal): >ULN - 3.0 x ULN; >3.0 - 5.0; >5.0 - 20.0; >20.0 x ULN
@cases((40, 0), (40.1, 1), (120, 1), (120.1, 2), (200, 2), (200.1, 3), (800, 3), (800.1, 4))
def test_alt_baseline_normal(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Alanine aminotransferase increased", value, "U/L", uln=40) == expected


# CTCAE v5 ALT increased (baseline abnormal): 1.5 - 3.0 x baseline; >3.0 - 5.0; >5.0 - 20.0; >20.0 x baseline
@cases((89.9, 0), (90, 1), (180, 1), (180.1, 2), (300, 2), (300.1, 3), (1200, 3), (1200.1, 4))
def test_alt_baseline_high(criteria: CriteriaSet, value: float, expected: int) -> None:
    term = "Alanine aminotransferase increased"
    assert grade(criteria, term, value, "U/L", uln=40, baseline=60, baseline_high=True) == expected


# CTCAE v5 Alkaline phosphatase increased: >ULN - 2.5 x ULN; >2.5 - 5.0; >5.0 - 20.0; >20.0 x ULN;
# baseline abnormal: 2.0 - 2.5 x baseline; ...
@cases((130, 0), (130.1, 1), (325, 1), (325.1, 2), (650, 2), (650.1, 3), (2600, 3), (2600.1, 4))
def test_alp_baseline_normal(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Alkaline phosphatase increased", value, "U/L", uln=130) == expected


@cases((399.9, 0), (400, 1), (500, 1), (500.1, 2))
def test_alp_baseline_high(criteria: CriteriaSet, value: float, expected: int) -> None:
    term = "Alkaline phosphatase increased"
    assert grade(criteria, term, value, "U/L", uln=130, baseline=200, baseline_high=True) == expected


# CTCAE v5 GGT increased, baseline abnormal: 2.0 - 2.5 x baseline (admiral: > 2.0 x baseline)
@cases((200, 0), (200.1, 1), (250, 1), (250.1, 2))
def test_ggt_baseline_high(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "GGT increased", value, "U/L", uln=60, baseline=100, baseline_high=True) == expected


# CTCAE v5 Blood bilirubin increased: >ULN - 1.5 x ULN; >1.5 - 3.0; >3.0 - 10.0; >10.0 x ULN
@cases((21, 0), (21.1, 1), (31.5, 1), (31.6, 2), (63, 2), (63.1, 3), (210, 3), (210.1, 4))
def test_bilirubin_baseline_normal(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Blood bilirubin increased", value, "umol/L", uln=21) == expected


# CTCAE v5 Creatinine increased: >ULN - 1.5 x ULN; >1.5 - 3.0 x baseline or ULN; >3.0 x baseline, >3.0 - 6.0 x
# ULN; >6.0 x ULN
@cases((110, 0), (110.1, 1), (165, 1), (165.1, 2), (330, 2), (330.1, 3), (660, 3), (660.1, 4))
def test_creatinine_uln(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Creatinine increased", value, "umol/L", uln=110, baseline=None) == expected


@cases((75, 0), (75.1, 2), (100, 2), (150.1, 3))
def test_creatinine_baseline(criteria: CriteriaSet, value: float, expected: int) -> None:
    # baseline 50: 1.5 x baseline = 75, 3 x baseline = 150, all values below 1.0 x ULN = 200
    assert grade(criteria, "Creatinine increased", value, "umol/L", uln=200, baseline=50) == expected


# CTCAE v5 CPK increased: >ULN - 2.5 x ULN; >2.5 - 5 x ULN; >5 - 10 x ULN; >10 x ULN
@cases((200, 0), (200.1, 1), (500, 1), (500.1, 2), (1000, 2), (1000.1, 3), (2000, 3), (2000.1, 4))
def test_cpk(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "CPK increased", value, "U/L", uln=200) == expected


# CTCAE v5 Lipase increased: >ULN - 1.5; >1.5 - 2.0; >2.0 - 5.0 with signs or symptoms (G3); >5.0 x ULN with
# signs or symptoms (G4) (admiral worst case)
@cases((60, 0), (60.1, 1), (90, 1), (90.1, 2), (120, 2), (120.1, 3), (300, 3), (300.1, 4))
def test_lipase(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Lipase increased", value, "U/L", uln=60) == expected


# CTCAE v5 Serum amylase increased: same cut points as lipase
@cases((100, 0), (100.1, 1), (150.1, 2), (200.1, 3), (500.1, 4))
def test_amylase(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Serum amylase increased", value, "U/L", uln=100) == expected


# CTCAE v5 Cholesterol high: >ULN - 7.75; >7.75 - 10.34; >10.34 - 12.92; >12.92 mmol/L
@cases((5.2, 0), (5.21, 1), (7.75, 1), (7.76, 2), (10.34, 2), (10.35, 3), (12.92, 3), (12.93, 4))
def test_cholesterol_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Cholesterol high", value, "mmol/L", uln=5.2) == expected


# CTCAE v5 Cholesterol high: >ULN - 300; >300 - 400; >400 - 500; >500 mg/dL
@cases((200, 0), (201, 1), (300, 1), (301, 2), (400, 2), (401, 3), (500, 3), (501, 4))
def test_cholesterol_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Cholesterol high", value, "mg/dL", uln=200) == expected


# CTCAE v5 Hypertriglyceridemia: 1.71 - 3.42; >3.42 - 5.7; >5.7 - 11.4; >11.4 mmol/L (admiral: > 1.71)
@cases((1.71, 0), (1.72, 1), (3.42, 1), (3.43, 2), (5.7, 2), (5.71, 3), (11.4, 3), (11.41, 4))
def test_triglycerides_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypertriglyceridemia", value, "mmol/L") == expected


# CTCAE v5 Hypertriglyceridemia: 150 - 300; >300 - 500; >500 - 1000; >1000 mg/dL
@cases((150, 0), (151, 1), (300, 1), (301, 2), (500, 2), (501, 3), (1000, 3), (1001, 4))
def test_triglycerides_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypertriglyceridemia", value, "mg/dL") == expected


# CTCAE v5 Hyperuricemia: >ULN without physiologic consequences (G1); with (G3): admiral worst case G3
@cases((420, 0), (420.1, 3))
def test_hyperuricemia(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hyperuricemia", value, "umol/L", uln=420) == expected


# CTCAE v5 Hypoalbuminemia: <LLN - 30 g/L; <30 - 20 g/L; <20 g/L
@cases((19.9, 3), (20, 2), (29.9, 2), (30, 1), (34.9, 1), (35, 0))
def test_hypoalbuminemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypoalbuminemia", value, "g/L", lln=35, uln=50) == expected


# CTCAE v5 Hypoalbuminemia: <LLN - 3 g/dL; <3 - 2 g/dL; <2 g/dL
@cases((1.99, 3), (2.0, 2), (2.99, 2), (3.0, 1), (3.5, 0))
def test_hypoalbuminemia_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypoalbuminemia", value, "g/dL", lln=3.5, uln=5.0) == expected


# CTCAE v5 Hypoglycemia: <LLN - 3.0; <3.0 - 2.2; <2.2 - 1.7; <1.7 mmol/L
@cases((1.69, 4), (1.7, 3), (2.19, 3), (2.2, 2), (2.99, 2), (3.0, 1), (3.9, 0))
def test_hypoglycemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypoglycemia", value, "mmol/L", lln=3.9, uln=6.1) == expected


# CTCAE v5 Hypoglycemia: <LLN - 55; <55 - 40; <40 - 30; <30 mg/dL
@cases((29.9, 4), (30, 3), (39.9, 3), (40, 2), (54.9, 2), (55, 1), (70, 0))
def test_hypoglycemia_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypoglycemia", value, "mg/dL", lln=70, uln=110) == expected


# CTCAE v5 Hypercalcemia: corrected calcium >ULN - 2.9; >2.9 - 3.1; >3.1 - 3.4; >3.4 mmol/L
@cases((2.6, 0), (2.61, 1), (2.9, 1), (2.91, 2), (3.1, 2), (3.11, 3), (3.4, 3), (3.41, 4))
def test_hypercalcemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypercalcemia", value, "mmol/L", lln=2.2, uln=2.6) == expected


# CTCAE v5 Hypercalcemia: corrected calcium >ULN - 11.5; >11.5 - 12.5; >12.5 - 13.5; >13.5 mg/dL
@cases((10.5, 0), (10.6, 1), (11.5, 1), (11.6, 2), (12.5, 2), (12.6, 3), (13.5, 3), (13.6, 4))
def test_hypercalcemia_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypercalcemia", value, "mg/dL", lln=8.5, uln=10.5) == expected


# CTCAE v5 Hypocalcemia: corrected calcium <LLN - 2.0; <2.0 - 1.75; <1.75 - 1.5; <1.5 mmol/L
@cases((1.49, 4), (1.5, 3), (1.74, 3), (1.75, 2), (1.99, 2), (2.0, 1), (2.2, 0))
def test_hypocalcemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypocalcemia", value, "mmol/L", lln=2.2, uln=2.6) == expected


# CTCAE v5 Hypocalcemia: corrected calcium <LLN - 8.0; <8.0 - 7.0; <7.0 - 6.0; <6.0 mg/dL
@cases((5.9, 4), (6.0, 3), (6.9, 3), (7.0, 2), (7.9, 2), (8.0, 1), (8.5, 0))
def test_hypocalcemia_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypocalcemia", value, "mg/dL", lln=8.5, uln=10.5) == expected


# CTCAE v5 Hypercalcemia: ionized calcium >ULN - 1.5; >1.5 - 1.6; >1.6 - 1.8; >1.8 mmol/L
@cases((1.32, 0), (1.33, 1), (1.5, 1), (1.51, 2), (1.6, 2), (1.61, 3), (1.8, 3), (1.81, 4))
def test_hypercalcemia_ionized(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypercalcemia (Ionized)", value, "mmol/L", lln=1.12, uln=1.32) == expected


# CTCAE v5 Hypocalcemia: ionized calcium <LLN - 1.0; <1.0 - 0.9; <0.9 - 0.8; <0.8 mmol/L
@cases((0.79, 4), (0.8, 3), (0.89, 3), (0.9, 2), (0.99, 2), (1.0, 1), (1.12, 0))
def test_hypocalcemia_ionized(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypocalcemia (Ionized)", value, "mmol/L", lln=1.12, uln=1.32) == expected


# CTCAE v5 Hypermagnesemia: >ULN - 1.23 mmol/L (G1); >1.23 - 3.30 (G3); >3.30 mmol/L (G4)
@cases((1.0, 0), (1.01, 1), (1.23, 1), (1.24, 3), (3.3, 3), (3.31, 4))
def test_hypermagnesemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypermagnesemia", value, "mmol/L", lln=0.7, uln=1.0) == expected


# CTCAE v5 Hypomagnesemia: <LLN - 0.5; <0.5 - 0.4; <0.4 - 0.3; <0.3 mmol/L
@cases((0.29, 4), (0.3, 3), (0.39, 3), (0.4, 2), (0.49, 2), (0.5, 1), (0.7, 0))
def test_hypomagnesemia_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypomagnesemia", value, "mmol/L", lln=0.7, uln=1.0) == expected


# CTCAE v5 Hypomagnesemia: <LLN - 1.2; <1.2 - 0.9; <0.9 - 0.7; <0.7 mg/dL
@cases((0.69, 4), (0.7, 3), (0.89, 3), (0.9, 2), (1.19, 2), (1.2, 1), (1.7, 0))
def test_hypomagnesemia_conventional(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Hypomagnesemia", value, "mg/dL", lln=1.7, uln=2.4) == expected


# CTCAE v5 INR increased: >1.2 - 1.5; >1.5 - 2.5; >2.5 (plus x baseline if on anticoagulation)
@cases((1.0, 0), (1.21, 1), (1.5, 1), (1.51, 2), (2.5, 2), (2.51, 3))
def test_inr_absolute(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "INR increased", value, "", baseline=1.0) == expected


# CTCAE v5 aPTT prolonged: >ULN - 1.5 x ULN; >1.5 - 2.5 x ULN; >2.5 x ULN
@cases((40, 0), (40.1, 1), (60, 1), (60.1, 2), (100, 2), (100.1, 3))
def test_aptt(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Activated partial thromboplastin time prolonged", value, "s", uln=40) == expected


# CTCAE v5 Fibrinogen decreased: <1.0 - 0.75 x LLN; <0.75 - 0.5; <0.5 - 0.25; <0.25 x LLN; <50 mg/dL
@cases((0.49, 4), (0.5, 3), (0.99, 3), (1.0, 2), (1.49, 2), (1.5, 1), (1.99, 1), (2.0, 0))
def test_fibrinogen_si(criteria: CriteriaSet, value: float, expected: int) -> None:
    # LLN 2.0 g/L: 0.25 x LLN = 0.5, 0.5 x LLN = 1.0, 0.75 x LLN = 1.5; absolute <0.5 g/L is grade 4 too
    assert grade(criteria, "Fibrinogen decreased", value, "g/L", lln=2.0, uln=4.0) == expected


# CTCAE v5 Haptoglobin decreased: G1 <LLN
@cases((0.29, 1), (0.3, 0))
def test_haptoglobin(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Haptoglobin decreased", value, "g/L", lln=0.3, uln=2.0) == expected


# CTCAE v5 Blood lactate dehydrogenase increased: G1 >ULN
@cases((250, 0), (250.1, 1))
def test_ldh(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Blood lactate dehydrogenase increased", value, "U/L", uln=250) == expected


# CTCAE v5 Acidosis: pH <normal, but >=7.3 (G1); pH <7.3 (G3)
@cases((7.29, 3), (7.3, 1), (7.34, 1), (7.35, 0))
def test_acidosis(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Acidosis", value, "", lln=7.35, uln=7.45) == expected


# CTCAE v5 Alkalosis: pH >normal, but <=7.5 (G1); pH >7.5 (G3)
@cases((7.45, 0), (7.46, 1), (7.5, 1), (7.51, 3))
def test_alkalosis(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Alkalosis", value, "", lln=7.35, uln=7.45) == expected


# CTCAE v5 TSH increased: G1 "TSH increased and no intervention initiated" (read as > ULN)
@cases((4.0, 0), (4.01, 1), (40, 1))
def test_tsh(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Thyroid stimulating hormone increased", value, "mU/L", uln=4.0) == expected


# CTCAE v5 ECG QT corrected interval prolonged: G1 Average QTc 450 - 480 ms; G2 481 - 500 ms;
# G3 >= 501 ms; >60 ms change from baseline
@cases((449, 0), (449.9, 0), (450, 1), (480, 1), (481, 2), (500, 2), (500.5, 3), (501, 3))
def test_qtcf(criteria: CriteriaSet, value: float, expected: int) -> None:
    term = "Electrocardiogram QT corrected interval prolonged"
    assert grade(criteria, term, value, "ms", baseline=None) == expected


@cases((460, 1), (461, 3))
def test_qtcf_change_from_baseline(criteria: CriteriaSet, value: float, expected: int) -> None:
    term = "Electrocardiogram QT corrected interval prolonged"
    assert grade(criteria, term, value, "ms", baseline=400) == expected


# CTCAE v5 Proteinuria: urinary protein >=ULN - <1.0 g/24 hrs (G1); 1.0 - <3.5 (G2); >=3.5 g/24 hrs (G3)
@cases((0.14, 0), (0.15, 1), (0.99, 1), (1.0, 2), (3.49, 2), (3.5, 3))
def test_proteinuria_24h(criteria: CriteriaSet, value: float, expected: int) -> None:
    assert grade(criteria, "Proteinuria", value, "g/24h", uln=0.15) == expected
