"""Owns the `lab`, `vital` and `ecg` conditions: a graded finding reaching a CTCAE grade for a term."""

from __future__ import annotations

from dataclasses import dataclass

from safety_monitor.domain.grading import Graded, GradeResult
from safety_monitor.domain.messages import Finding, MessageType


@dataclass(frozen=True, slots=True)
class FindingCondition:
    """Matches a finding of `domain` for one of `tests` whose derived grade for `term` reaches `grade_at_least`."""

    domain: MessageType  # LB, VS or EG
    tests: frozenset[str]  # test codes, upper case
    term: str  # CTCAE term the grade must be for, e.g. "Hypertension"
    grade_at_least: int

    @property
    def kind(self) -> str:
        return {MessageType.LB: "lab", MessageType.VS: "vital", MessageType.EG: "ecg"}[self.domain]

    def matches(self, finding: Finding, grades: tuple[GradeResult, ...]) -> Graded | None:
        """The grade that satisfies the condition, or None. "Cannot grade" never matches a grade threshold."""
        if finding.domain is not self.domain or finding.test_code not in self.tests:
            return None
        for result in grades:
            if (
                isinstance(result, Graded)
                and result.term.casefold() == self.term.casefold()
                and result.grade >= self.grade_at_least
            ):
                return result
        return None
