"""Helpers of the CTCAE boundary-table tests: grade one value by the shipped criteria, and one parametrised case
per (value, expected grade) pair."""

from __future__ import annotations

import pytest

from safety_monitor.domain.ctcae import CriteriaSet, Criterion, grade_value
from safety_monitor.domain.grading import Graded


def grade(
    criteria: CriteriaSet,
    term: str,
    value: float,
    unit: str,
    *,
    lln: float | None = None,
    uln: float | None = None,
    baseline: float | None = None,
    baseline_high: bool | None = False,
) -> int:
    """The grade `value` gets; fails the test when the term has no criterion for `unit` or the value is not graded."""
    criterion = criteria.select(term, unit)
    assert isinstance(criterion, Criterion), criterion
    result = grade_value(criterion, value, unit, lln, uln, baseline, baseline_high)
    assert isinstance(result, Graded), result
    return result.grade


def cases(*pairs: tuple[float, int]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("value", "expected"), list(pairs), ids=[f"{v:g}->G{g}" for v, g in pairs])
