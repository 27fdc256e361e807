"""Owns CTCAE lab and ECG grading: criteria as typed data, the threshold walk, unit checks and baselines.

The FindingGrader that applies them to stream results is domain/lab_grader.py."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Generic, Literal, TypeVar

from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.grading import Graded, GradeResult, NotGradable
from safety_monitor.domain.messages import MessageType
from safety_monitor.domain.units import lookup

Op = Literal["<", "<=", ">", ">="]
Reference = Literal["lln", "uln", "baseline"]
Input = Literal["value", "lln", "uln", "baseline", "baseline_high", "result_text"]
OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
REFERENCES: tuple[Reference, ...] = ("lln", "uln", "baseline")
INPUTS: tuple[Input, ...] = ("value", "lln", "uln", "baseline", "baseline_high", "result_text")
REFERENCE_LABELS = {"lln": "LLN", "uln": "ULN", "baseline": "baseline"}
_REF_INDEX = {"lln": 0, "uln": 1, "baseline": 2}

# LBNRIND / BNRIND values that mean "above the normal range" (admiral's high_indicator).
HIGH_INDICATORS = frozenset({"HIGH", "H"})
LOW_INDICATORS = frozenset({"LOW", "L"})


class Direction(StrEnum):
    LOW = "low"
    HIGH = "high"


class UnitSystem(StrEnum):
    SI = "SI"
    CONVENTIONAL = "conventional"
    ANY = "any"  # multiples of the record's own range or baseline, or a dimensionless quantity: no unit check


class MissingInput(StrEnum):
    CANNOT_GRADE = "cannot_grade"  # stop the walk: the grade is unknown (admiral's `is.na(X) ~ NA`)
    SKIP = "skip"  # the clause does not apply without the input (admiral's `!is.na(BASE) & ...`)


@dataclass(frozen=True, slots=True)
class Threshold:
    """`value <op> limit`, the limit being an absolute `value` or `factor * <of> + plus`."""

    op: Op
    value: float | None = None
    of: Reference | None = None
    factor: float = 1.0
    plus: float = 0.0

    def describe(self) -> str:
        if self.of is None:
            return f"{self.op} {self.value:g}"
        ref = REFERENCE_LABELS[self.of]
        limit = ref if self.factor == 1 else f"{self.factor:g} x {ref}"
        if self.plus:
            limit = f"{limit} + {self.plus:g}"
        return f"{self.op} {limit}"


@dataclass(frozen=True, slots=True)
class GradeRule:
    """One clause of the walk: `grade` holds when `threshold` and every `also` condition hold."""

    grade: int
    threshold: Threshold
    also: tuple[Threshold, ...] = ()
    when_missing: MissingInput = MissingInput.CANNOT_GRADE
    provisional: bool = False  # the grade rests on a worst-case assumption (admiral) or on missing context
    assumption: str = ""


@dataclass(frozen=True, slots=True)
class Criterion:
    """One CTCAE term in one unit system, as the data file states it."""

    term: str
    direction: Direction
    unit_system: UnitSystem
    units: tuple[str, ...]  # the units CTCAE states it in; their exact equivalents (domain/units.py) are accepted
    inputs: tuple[Input, ...]
    required: tuple[Input, ...]  # checked before the walk: any missing one means "cannot grade"
    rules: tuple[GradeRule, ...]  # walked in order; the first clause that holds gives the grade
    ctcae_text: Mapping[str, str]
    comment: str
    ctcae_version: str
    rules_if_baseline_high: tuple[GradeRule, ...] = ()
    ordinal: Mapping[str, int] | None = None  # result text (upper case) -> grade, for semi-quantitative tests
    precision_decimals: int = 6
    _unit_keys: frozenset[tuple[str, float]] = field(init=False, repr=False, compare=False)
    _compiled: tuple[_Compiled, ...] = field(init=False, repr=False, compare=False)
    _compiled_high: tuple[_Compiled, ...] = field(init=False, repr=False, compare=False)
    _required_refs: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        required_refs = tuple(_REF_INDEX[name] for name in self.required if name in _REF_INDEX)
        object.__setattr__(self, "_required_refs", required_refs)
        object.__setattr__(self, "_unit_keys", frozenset(unit_key(u) for u in self.units))
        object.__setattr__(self, "_compiled", _compile(self.rules, self.precision_decimals))
        object.__setattr__(self, "_compiled_high", _compile(self.rules_if_baseline_high, self.precision_decimals))

    @property
    def is_ordinal(self) -> bool:
        return self.ordinal is not None

    def accepts_unit(self, unit: str | None) -> bool:
        if self.unit_system is UnitSystem.ANY:
            return True
        return unit is not None and unit_key(unit) in self._unit_keys


def unit_key(unit: str) -> tuple[str, float]:
    """What exactly equivalent spellings of a unit share: the unit table's (canonical, factor); a spelling the
    table does not know matches only itself (case-insensitively)."""
    known = lookup(unit)
    if known is None:
        return ("spelled " + unit.strip().casefold(), 1.0)
    return known.key


@dataclass(frozen=True, slots=True)
class TestCodeTerms:
    """Which CTCAE terms a test code (LBTESTCD / EGTESTCD) is graded against, low side and high side."""

    test_code: str
    domain: MessageType
    low: str | None
    high: str | None
    specimens: frozenset[str] = frozenset()  # when non-empty, a known specimen outside it is not graded
    specimen_required: bool = False  # grade only when the specimen is known to be one of `specimens`
    plausible_min: float | None = None  # lowest plausible result, in `plausible_unit` (a screen, not CTCAE)
    plausible_unit: str = ""


@dataclass(frozen=True, slots=True)
class CriteriaSet:
    """Every criterion of one CTCAE version plus the test-code table."""

    ctcae_version: str
    criteria: tuple[Criterion, ...]
    test_codes: Mapping[str, TestCodeTerms]

    def for_term(self, term: str) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.term == term)

    def select(self, term: str, unit: str | None) -> Criterion | NotGradable:
        """The numeric criterion for `term` accepting `unit`; an unknown unit cannot grade, never a guess."""
        numeric = [c for c in self.criteria if c.term == term and not c.is_ordinal]
        for criterion in numeric:
            if criterion.unit_system is not UnitSystem.ANY and criterion.accepts_unit(unit):
                return criterion
        for criterion in numeric:
            if criterion.unit_system is UnitSystem.ANY:
                return criterion
        accepted = sorted({u for c in numeric for u in c.units})
        if not numeric:
            return NotGradable(term, f"{term} has no numeric criterion", self.ctcae_version)
        shown = "no unit" if unit is None or not unit.strip() else f"unit {unit.strip()}"
        return NotGradable(
            term,
            f"{shown} not accepted for {term} (accepted: {', '.join(accepted)}, or an exact equivalent)",
            self.ctcae_version,
        )

    def ordinal_for(self, term: str) -> Criterion | None:
        for criterion in self.criteria:
            if criterion.term == term and criterion.is_ordinal:
                return criterion
        return None


# --- the interpreter ---------------------------------------------------------------------------------------

# A compiled clause: (grade, sign, slack, absolute limit or None, reference index or -1, factor, plus,
# skip-when-missing, provisional, assumption, compiled `also` conditions). Every comparison becomes
# `sign * (value - limit) > slack`, slack being +/- half a unit in the last compared decimal place: values
# agreeing to `precision_decimals` places compare as equal, so a value exactly at a cut point (ALT exactly
# 3 x ULN, whatever the binary error of 3 * ULN) grades as CTCAE says. Tuples and one expression keep the
# walk cheap: the batch command grades hundreds of thousands of records a second through it.
ThresholdTerms = tuple[float, float, float | None, int, float, float]
_Compiled = tuple[int, float, float, float | None, int, float, float, bool, bool, str, tuple[ThresholdTerms, ...]]
_SIGN_STRICT = {">": (1.0, True), ">=": (1.0, False), "<": (-1.0, True), "<=": (-1.0, False)}


def threshold_terms(threshold: Threshold, digits: int) -> ThresholdTerms:
    sign, strict = _SIGN_STRICT[threshold.op]
    half_unit = 0.5 * 10.0**-digits
    slack = half_unit if strict else -half_unit
    ref = -1 if threshold.of is None else REFERENCES.index(threshold.of)
    return (sign, slack, threshold.value, ref, threshold.factor, threshold.plus)


def _compile(rules: tuple[GradeRule, ...], digits: int) -> tuple[_Compiled, ...]:
    compiled: list[_Compiled] = []
    for rule in rules:
        sign, slack, absolute, ref, factor, plus = threshold_terms(rule.threshold, digits)
        also = tuple(threshold_terms(t, digits) for t in rule.also)
        skip = rule.when_missing is MissingInput.SKIP
        compiled.append(
            (
                rule.grade,
                sign,
                slack,
                absolute,
                ref,
                factor,
                plus,
                skip,
                rule.provisional,
                rule.assumption,
                also,
            )
        )
    return tuple(compiled)


def _walk(
    rules: tuple[_Compiled, ...], value: float, refs: tuple[float | None, float | None, float | None]
) -> tuple[int, _Compiled | None, int]:
    """(grade, clause that gave it, index of the missing reference or -1); grade -1 means "cannot grade"."""
    for clause in rules:
        grade, sign, slack, limit, ref, factor, plus, skip, _prov, _why, also = clause
        if limit is None:
            base = refs[ref]
            if base is None:
                if skip:
                    continue
                return -1, clause, ref
            limit = factor * base + plus
        if sign * (value - limit) <= slack:
            continue
        if also:
            holds = True
            for a_sign, a_slack, a_limit, a_ref, a_factor, a_plus in also:
                if a_limit is None:
                    a_base = refs[a_ref]
                    if a_base is None:
                        holds = False
                        break
                    a_limit = a_factor * a_base + a_plus
                if a_sign * (value - a_limit) <= a_slack:
                    holds = False
                    break
            if not holds:
                continue
        return grade, clause, -1
    return 0, None, -1


def grade_value(
    criterion: Criterion,
    value: float | None,
    unit: str | None,
    lln: float | None = None,
    uln: float | None = None,
    baseline: float | None = None,
    baseline_high: bool | None = None,
) -> GradeResult:
    """Grade one numeric result against one criterion; never grade 0 for missing inputs.

    `baseline_high` is True when the subject's baseline for the test was above its normal range, False when
    it was not, None when unknown. Comparisons are made at `criterion.precision_decimals` decimal places, so a
    value exactly at a cut point (e.g. ALT exactly 3 x ULN) grades as CTCAE says, whatever the float error.
    """
    term, version = criterion.term, criterion.ctcae_version
    if value is None:
        return NotGradable(term, "no numeric result", version)
    if not criterion.accepts_unit(unit):
        shown = "no unit" if unit is None or not unit.strip() else f"unit {unit.strip()}"
        accepted = ", ".join(criterion.units)
        return NotGradable(
            term, f"{shown} not accepted for {term} (accepted: {accepted}, or an exact equivalent)", version
        )
    return grade_selected(criterion, value, lln, uln, baseline, baseline_high)


def grade_selected(
    criterion: Criterion,
    value: float,
    lln: float | None,
    uln: float | None,
    baseline: float | None,
    baseline_high: bool | None,
) -> GradeResult:
    """`grade_value` for a present value in a unit `criterion` is known to accept."""
    grade, provisional, text = evaluate(criterion, value, lln, uln, baseline, baseline_high)
    if grade < 0:
        return NotGradable(criterion.term, text, criterion.ctcae_version)
    return Graded(criterion.term, grade, criterion.ctcae_version, provisional=provisional, note=text)


def evaluate(
    criterion: Criterion,
    value: float,
    lln: float | None,
    uln: float | None,
    baseline: float | None,
    baseline_high: bool | None,
) -> tuple[int, bool, str]:
    """The walk without result objects, for the batch path: (grade, provisional, note); grade -1 = cannot
    grade, the text then being the reason. The unit must already be known to be accepted."""
    term = criterion.term
    refs = (lln, uln, baseline)
    for index in criterion._required_refs:
        if refs[index] is None:
            return -1, False, f"{REFERENCE_LABELS[REFERENCES[index]]} missing: needed to grade {term}"
    rules = criterion._compiled
    note = ""
    provisional = False
    if criterion._compiled_high:
        if baseline_high is True:
            if baseline is None:
                return -1, False, f"baseline above ULN but baseline value missing for {term}"
            rules = criterion._compiled_high
            note = "baseline above ULN: graded against multiples of baseline"
        elif baseline_high is None:
            # CTCAE grades against the baseline when it was abnormal; not knowing it, grade against ULN, which
            # gives the higher (worst-case) grade, and say so until the baseline arrives.
            provisional = True
            note = "baseline unknown: graded against ULN (worst case) until a baseline is known"
    grade, clause, missing = _walk(rules, value, refs)
    if grade < 0:
        assert clause is not None
        return -1, False, f"{REFERENCE_LABELS[REFERENCES[missing]]} missing: needed for grade {clause[0]} of {term}"
    if grade == 0:
        return 0, False, ""
    if clause is not None and clause[8]:
        provisional = True
        note = f"{note}; {clause[9]}" if note else clause[9]
    return grade, provisional, note


def grade_ordinal(criterion: Criterion, result_text: str | None) -> GradeResult:
    """Grade a semi-quantitative result (urine dipstick "2+") by the criterion's ordinal table."""
    term, version = criterion.term, criterion.ctcae_version
    if criterion.ordinal is None:
        return NotGradable(term, f"{term} criterion has no ordinal scale", version)
    if result_text is None or not result_text.strip():
        return NotGradable(term, "no result", version)
    grade = criterion.ordinal.get(result_text.strip().upper())
    if grade is None:
        known = ", ".join(criterion.ordinal)
        return NotGradable(term, f"result {result_text.strip()!r} is not on the scale ({known})", version)
    return Graded(term, grade, version)


# CTCAE v5 Proteinuria, navigational note: "24-hour urine collection takes precedence over dipstick".
SUPERSEDED_BY_24H = "superseded by a 24-hour urine protein of the same day (CTCAE: 24-hour collection takes precedence)"


def proteinuria_grade(dipstick: GradeResult | None, urine_24h: GradeResult | None) -> GradeResult | None:
    """The proteinuria grade of one day: the 24-hour collection wins when graded, else the dipstick."""
    if isinstance(urine_24h, Graded):
        return urine_24h
    return dipstick if dipstick is not None else urine_24h


# --- derived inputs ---------------------------------------------------------------------------------------


def corrected_calcium(calcium: float, calcium_unit: str, albumin: float, albumin_unit: str) -> float | None:
    """Albumin-corrected total calcium (Payne): mmol/L + 0.02 x (40 - g/L); mg/dL + 0.8 x (4 - g/dL).

    CTCAE v5 Hypo-/Hypercalcemia grade "corrected serum calcium". None when the unit pair is not one of the
    two the formula is stated for (no conversions are guessed).
    """
    ca_unit, alb_unit = calcium_unit.strip().casefold(), albumin_unit.strip().casefold()
    if ca_unit == "mmol/l" and alb_unit == "g/l":
        return calcium + 0.02 * (40.0 - albumin)
    if ca_unit == "mg/dl" and alb_unit == "g/dl":
        return calcium + 0.8 * (4.0 - albumin)
    return None


def is_baseline_high(indicator: str | None, value: float | None, uln: float | None) -> bool | None:
    """Whether a baseline was above normal: its LBNRIND/BNRIND when given (admiral), else value > ULN."""
    if indicator is not None and indicator.strip():
        return indicator.strip().upper() in HIGH_INDICATORS
    if value is None or uln is None:
        return None
    return value > uln


def is_below_normal(indicator: str | None, value: float | None, lln: float | None) -> bool | None:
    if indicator is not None and indicator.strip():
        return indicator.strip().upper() in LOW_INDICATORS
    if value is None or lln is None:
        return None
    return value < lln


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BaselineCandidate(Generic[T]):
    """One record that may be a subject's baseline for one test."""

    subject_id: str
    test_code: str
    flagged: bool  # --BLFL == "Y"
    collected_at: PartialDate | None
    item: T


def derive_baselines(
    candidates: Iterable[BaselineCandidate[T]], first_dose: Mapping[str, date]
) -> dict[tuple[str, str], T]:
    """Baseline per (subject, test): the record flagged baseline "Y", else the last value before first dose.

    "Before first dose" is decided at the precision of the collection date: on or before the first-dose
    date counts (a pre-dose draw on day 1 is the usual baseline; admiral's ADT <= TRTSDT); a partial date
    that cannot be placed before the first dose is not used. Of several flagged records the latest wins.
    """
    flagged: dict[tuple[str, str], tuple[str, T]] = {}
    predose: dict[tuple[str, str], tuple[str, T]] = {}
    for cand in candidates:
        key = (cand.subject_id, cand.test_code)
        order = cand.collected_at.text if cand.collected_at is not None else ""
        if cand.flagged:
            current = flagged.get(key)
            if current is None or order >= current[0]:
                flagged[key] = (order, cand.item)
            continue
        dose = first_dose.get(cand.subject_id)
        if dose is None or cand.collected_at is None:
            continue
        after = cand.collected_at.on_or_after(dose)
        on_dose_day = cand.collected_at.as_date() == dose
        if after is None or (after and not on_dose_day):
            continue
        current = predose.get(key)
        if current is None or order >= current[0]:
            predose[key] = (order, cand.item)
    result = {key: item for key, (_, item) in predose.items()}
    result.update({key: item for key, (_, item) in flagged.items()})
    return result
