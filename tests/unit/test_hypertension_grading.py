"""Blood-pressure based hypertension grade, the skeleton's value-derived grade."""

import pytest

from safety_monitor.domain.grading import BloodPressureGrader, Graded, NotGradable
from tests.factories import vs
from tests.unit.test_wire import ok


# CTCAE v5.0 Hypertension (adult): G1 SBP 120-139 or DBP 80-89; G2 SBP 140-159 or DBP 90-99;
# G3 SBP >= 160 or DBP >= 100.
@pytest.mark.parametrize(
    ("test", "value", "grade"),
    [
        ("SYSBP", 119, 0),
        ("SYSBP", 120, 1),
        ("SYSBP", 139, 1),
        ("SYSBP", 140, 2),
        ("SYSBP", 159, 2),
        ("SYSBP", 159.9, 2),
        ("SYSBP", 160, 3),
        ("SYSBP", 210, 3),
        ("DIABP", 79, 0),
        ("DIABP", 80, 1),
        ("DIABP", 89, 1),
        ("DIABP", 90, 2),
        ("DIABP", 99, 2),
        ("DIABP", 100, 3),
    ],
    ids=lambda v: str(v),
)
def test_boundaries(test: str, value: float, grade: int) -> None:
    (result,) = BloodPressureGrader().grade(ok(vs(test=test, value=value)).message, None)  # type: ignore[arg-type]
    assert isinstance(result, Graded) and result.grade == grade
    assert result.provisional is (grade in (2, 3))


def test_wrong_unit_cannot_be_graded() -> None:
    (result,) = BloodPressureGrader().grade(ok(vs(VSSTRESU="kPa")).message, None)  # type: ignore[arg-type]
    assert isinstance(result, NotGradable) and "kPa" in result.reason


def test_other_vital_signs_are_not_graded_here() -> None:
    assert BloodPressureGrader().grade(ok(vs(test="PULSE", value=120, VSSTRESU="beats/min")).message, None) == ()  # type: ignore[arg-type]
