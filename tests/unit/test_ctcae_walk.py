"""The compiled CTCAE walk gives what the interpreter (ctcae.evaluate) gives, for every criterion and any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.cli.lab_grader import plan_for, side_result
from safety_monitor.domain.ctcae import (
    REFERENCES,
    Criterion,
    Direction,
    GradeRule,
    MissingInput,
    Threshold,
    UnitSystem,
    evaluate,
)
from safety_monitor.domain.ctcae_walk import compile_walk

CRITERIA = load_criteria("5.0")
NUMERIC = [c for c in CRITERIA.criteria if not c.is_ordinal]

_ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
_REFERENCE = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6), st.sampled_from([0.0, -0.0, 1.0]))
_BASELINE_HIGH = st.sampled_from([True, False, None])


def _cut_points(criterion: Criterion, refs: tuple[float | None, float | None, float | None]) -> list[float]:
    """Every limit of the criterion for these references, and values just either side of the compared precision."""
    half = 0.5 * 10.0**-criterion.precision_decimals
    points: list[float] = []
    for rule in (*criterion.rules, *criterion.rules_if_baseline_high):
        for threshold in (rule.threshold, *rule.also):
            if threshold.value is not None:
                limit: float | None = threshold.value
            else:
                base = refs[REFERENCES.index(threshold.of)] if threshold.of is not None else refs[2]
                limit = None if base is None else threshold.factor * base + threshold.plus
            if limit is not None:
                points += [limit, limit + half, limit - half, limit + 0.9 * half, limit - 1.1 * half]
    return points or [0.0]


# (lln, uln, baseline, baseline_high): the references a record brings, any of them missing
_REFERENCES = st.tuples(_REFERENCE, _REFERENCE, _REFERENCE, _BASELINE_HIGH)
References = tuple[float | None, float | None, float | None, bool | None]


def _walks_as_the_interpreter(criterion: Criterion, data: st.DataObject, references: References) -> None:
    """The compiled walk gives what `evaluate` gives, for any value or one drawn at and around a cut-off."""
    lln, uln, baseline, baseline_high = references
    value = data.draw(st.one_of(_ANY_FLOAT, st.sampled_from(_cut_points(criterion, (lln, uln, baseline)))))
    compiled = compile_walk(criterion)
    expected = evaluate(criterion, value, lln, uln, baseline, baseline_high)
    assert compiled.evaluate(value, lln, uln, baseline, baseline_high) == expected, compiled.source


@pytest.mark.parametrize("criterion", NUMERIC, ids=lambda c: f"{c.term} ({c.unit_system})")
@settings(max_examples=150, deadline=None)
@given(data=st.data(), references=_REFERENCES)
def test_every_v5_criterion_walks_as_the_interpreter(
    criterion: Criterion, data: st.DataObject, references: References
) -> None:
    _walks_as_the_interpreter(criterion, data, references)


_THRESHOLD = st.builds(
    Threshold,
    op=st.sampled_from(["<", "<=", ">", ">="]),
    value=st.one_of(st.none(), st.floats(min_value=-100, max_value=100), st.sampled_from([math.inf, -math.inf])),
    of=st.sampled_from(["lln", "uln", "baseline"]),
    factor=st.sampled_from([1.0, -1.0, 0.0, -0.0, 0.5, 3.0, math.inf]),
    plus=st.sampled_from([0.0, -0.0, 1.5, -2.0]),
)
_RULE = st.builds(
    GradeRule,
    grade=st.integers(min_value=0, max_value=5),
    threshold=_THRESHOLD,
    also=st.lists(_THRESHOLD, max_size=2).map(tuple),
    when_missing=st.sampled_from(list(MissingInput)),
    provisional=st.booleans(),
    assumption=st.sampled_from(["", "worst case: symptomatic"]),
)


@st.composite
def _criteria(draw: st.DrawFn) -> Criterion:
    return Criterion(
        term="Made-up term",
        direction=Direction.HIGH,
        unit_system=UnitSystem.ANY,
        units=(),
        inputs=("value", "lln", "uln", "baseline"),
        required=tuple(draw(st.lists(st.sampled_from(["lln", "uln", "baseline", "value"]), unique=True))),
        rules=tuple(draw(st.lists(_RULE, max_size=5))),
        ctcae_text={},
        comment="",
        ctcae_version="5.0",
        rules_if_baseline_high=tuple(draw(st.lists(_RULE, max_size=3))),
        precision_decimals=draw(st.integers(min_value=0, max_value=8)),
    )


@settings(max_examples=400, deadline=None)
@given(criterion=_criteria(), data=st.data(), references=_REFERENCES)
def test_any_criterion_walks_as_the_interpreter(
    criterion: Criterion, data: st.DataObject, references: References
) -> None:
    """Clauses skipped or stopping on a missing reference, `also` conditions, signed zeros and infinities."""
    _walks_as_the_interpreter(criterion, data, references)


def test_each_outcome_is_listed_once_and_the_constants_stand_in_the_code() -> None:
    alt = next(c for c in NUMERIC if c.term == "Alanine aminotransferase increased")
    compiled = compile_walk(alt)
    assert len(set(compiled.outcomes)) == len(compiled.outcomes)
    assert "3.0 * uln" in compiled.source
    assert compiled.evaluate(121.0, None, 40.0, None, False) == (2, False, "")  # > 3 x ULN
    assert compiled.evaluate(121.0, None, None, None, False) == evaluate(alt, 121.0, None, None, None, False)


def test_a_non_finite_limit_is_passed_in_not_written() -> None:
    rule = GradeRule(2, Threshold(">", value=-math.inf))
    criterion = Criterion("T", Direction.HIGH, UnitSystem.ANY, (), ("value",), (), (rule,), {}, "", "5.0")
    compiled = compile_walk(criterion)
    assert "inf" not in compiled.source
    assert compiled.evaluate(1.0, None, None, None, None) == (2, False, "")


def test_side_results_are_what_the_row_grader_wrote_per_record() -> None:
    assert side_result("Anemia", "Anemia", (-1, False, "LLN missing")) == (
        "Anemia,",
        "Anemia: cannot grade: LLN missing",
        -1,
    )
    assert side_result("Anemia", "Anemia", (2, True, "why")) == ("Anemia,2", "Anemia grade 2 provisional: why", 2)
    assert side_result("Anemia", "Anemia", (1, False, "note")) == ("Anemia,1", "Anemia: note", 1)
    assert side_result("Anemia", "Anemia", (0, False, "")) == ("Anemia,0", "", 0)
    plan = plan_for(CRITERIA, " alt", "U/L")
    assert plan is not None and plan.high is not None and plan.high.walk is not None
    assert plan.high.results[plan.high.walk(201.0, None, 40.0, None, None)] == (
        "Alanine aminotransferase increased,3",
        "Alanine aminotransferase increased grade 3 provisional: baseline unknown: graded against ULN (worst case) "
        "until a baseline is known",
        3,
    )
    refused = plan_for(CRITERIA, "K", "mg/dL")
    assert refused is not None and refused.low is not None
    assert (refused.low.walk, refused.low.results) == (None, ())
