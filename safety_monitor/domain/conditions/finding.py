"""Owns the `lab`, `vital` and `ecg` conditions: a finding reaching a CTCAE grade, a multiple of ULN or baseline,
or an absolute value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from safety_monitor.domain.grading import Graded, GradeResult
from safety_monitor.domain.messages import Finding, MessageType
from safety_monitor.domain.units import equivalent

# Comparisons are made at 6 decimal places, as the CTCAE interpreter does (domain/ctcae.py): a value exactly at a
# cut point (ALT exactly 3 x ULN) meets ">= 3 x ULN" whatever the binary error of 3 * ULN.
_SLACK = 0.5e-6


class Comparison(StrEnum):
    """How a finding's value is compared: to a multiple of its reference, or to an absolute limit."""

    X_ULN_AT_LEAST = "x_uln_at_least"  # value >= k x ULN (the record's LBSTNRHI)
    X_ULN_ABOVE = "x_uln_above"  # value > k x ULN
    X_ULN_BELOW = "x_uln_below"  # value < k x ULN (e.g. ALP < 2 x ULN in Hy's law)
    X_BASELINE_AT_LEAST = "x_baseline_at_least"  # value >= k x the subject's baseline value
    ABOVE_BASELINE_BY = "above_baseline_by"  # value - baseline > k (e.g. QTcF > 60 ms over baseline)
    VALUE_ABOVE = "value_above"  # value > k, in `unit`
    VALUE_AT_LEAST = "value_at_least"  # value >= k, in `unit`
    VALUE_BELOW = "value_below"  # value < k, in `unit`
    VALUE_AT_MOST = "value_at_most"  # value <= k, in `unit`
    BELOW_LLN = "below_lln"  # LBNRIND LOW, else value < LLN (k unused)


ABSOLUTE = frozenset(
    {Comparison.VALUE_ABOVE, Comparison.VALUE_AT_LEAST, Comparison.VALUE_BELOW, Comparison.VALUE_AT_MOST}
)
_LOW_INDICATORS = frozenset({"LOW", "L"})


@dataclass(frozen=True, slots=True)
class ValueTest:
    """One typed comparison of a finding's standard numeric result (`--STRESN`)."""

    comparison: Comparison
    limit: float = 0.0
    unit: str | None = (
        None  # required for absolute comparisons: a result in a unit not exactly equivalent is not compared
    )

    def holds(self, finding: Finding, baseline: Finding | None = None) -> bool | None:
        """True / False, or None when it cannot be decided (no value, no ULN, no baseline, another unit)."""
        value = finding.value
        c = self.comparison
        if c is Comparison.BELOW_LLN:
            indicator = (finding.normal_range_indicator or "").strip().upper()
            if indicator:
                return indicator in _LOW_INDICATORS
            if value is None or finding.lln is None:
                return None
            return value < finding.lln - _SLACK
        if value is None:
            return None
        if c in ABSOLUTE:
            if self.unit is None or not equivalent(finding.unit, self.unit):
                return None
            reference = self.limit
        elif c in (Comparison.X_ULN_AT_LEAST, Comparison.X_ULN_ABOVE, Comparison.X_ULN_BELOW):
            if finding.uln is None:
                return None
            reference = self.limit * finding.uln
        else:
            if baseline is None or baseline.value is None:
                return None
            if not equivalent(baseline.unit, finding.unit):
                return None
            if c is Comparison.X_BASELINE_AT_LEAST:
                reference = self.limit * baseline.value
            else:
                return value - baseline.value > self.limit + _SLACK
        if c in (Comparison.X_ULN_ABOVE, Comparison.VALUE_ABOVE):
            return value > reference + _SLACK
        if c in (Comparison.VALUE_BELOW, Comparison.X_ULN_BELOW):
            return value < reference - _SLACK
        if c is Comparison.VALUE_AT_MOST:
            return value <= reference + _SLACK
        return value >= reference - _SLACK

    def describe(self) -> str:
        c = self.comparison
        if c is Comparison.BELOW_LLN:
            return "< LLN"
        label = {
            Comparison.X_ULN_AT_LEAST: f">= {self.limit:g} x ULN",
            Comparison.X_ULN_ABOVE: f"> {self.limit:g} x ULN",
            Comparison.X_ULN_BELOW: f"< {self.limit:g} x ULN",
            Comparison.X_BASELINE_AT_LEAST: f">= {self.limit:g} x baseline",
            Comparison.ABOVE_BASELINE_BY: f"> baseline + {self.limit:g}",
            Comparison.VALUE_ABOVE: f"> {self.limit:g} {self.unit}",
            Comparison.VALUE_AT_LEAST: f">= {self.limit:g} {self.unit}",
            Comparison.VALUE_BELOW: f"< {self.limit:g} {self.unit}",
            Comparison.VALUE_AT_MOST: f"<= {self.limit:g} {self.unit}",
        }
        return label[c]


@dataclass(frozen=True, slots=True)
class FindingMatch:
    """Why a finding met a condition: the term the alert is about, its grade, and a readable reason."""

    term: str
    grade: int
    provisional: bool
    reason: str


@dataclass(frozen=True, slots=True)
class FindingCondition:
    """Matches a finding of `domain` for one of `tests` meeting every criterion given.

    Criteria: the derived CTCAE grade for `term` reaches `grade_at_least` (both set, or neither), and every
    `value_tests` comparison holds. "Cannot grade" and "cannot compare" never match.
    """

    domain: MessageType  # LB, VS or EG
    tests: frozenset[str]  # test codes, upper case
    term: str | None = None  # CTCAE term the grade must be for, e.g. "Hypertension"
    grade_at_least: int | None = None
    value_tests: tuple[ValueTest, ...] = ()

    @property
    def kind(self) -> str:
        return {MessageType.LB: "lab", MessageType.VS: "vital", MessageType.EG: "ecg"}[self.domain]

    @property
    def needs_baseline(self) -> bool:
        return any(
            t.comparison in (Comparison.X_BASELINE_AT_LEAST, Comparison.ABOVE_BASELINE_BY) for t in self.value_tests
        )

    def match(
        self, finding: Finding, grades: tuple[GradeResult, ...], baseline: Finding | None = None
    ) -> FindingMatch | None:
        """Why the finding meets the condition, or None."""
        if finding.domain is not self.domain or finding.test_code not in self.tests:
            return None
        graded: Graded | None = None
        if self.term is not None and self.grade_at_least is not None:
            wanted = self.term.casefold()
            for result in grades:
                if (
                    isinstance(result, Graded)
                    and result.term.casefold() == wanted
                    and result.grade >= self.grade_at_least
                ):
                    graded = result
                    break
            if graded is None:
                return None
        for test in self.value_tests:
            if test.holds(finding, baseline) is not True:
                return None
        # A doubt about the input (a likely unit typo) travels into the alert: the grade is as sent.
        caution = next((g.caution for g in grades if isinstance(g, Graded) and g.caution), "")
        if graded is not None:
            reasons = [f"{graded.term} grade {graded.grade}{' (provisional)' if graded.provisional else ''}"]
            reasons += [t.describe() for t in self.value_tests]
            reasons += [caution.upper()[:1] + caution[1:]] if caution else []
            return FindingMatch(graded.term, graded.grade, graded.provisional, "; ".join(reasons))
        # A value-only condition: the alert is about the test; its grade is the worst CTCAE grade known for it.
        known = [g for g in grades if isinstance(g, Graded)]
        top = max(known, key=lambda g: g.grade) if known else None
        return FindingMatch(
            self.term or (top.term if top else finding.test_code),
            top.grade if top else 0,
            top.provisional if top else False,
            "; ".join([*(t.describe() for t in self.value_tests), *([caution] if caution else [])]),
        )
