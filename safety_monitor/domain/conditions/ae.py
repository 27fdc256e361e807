"""Owns the `ae` condition: an adverse event matching a term set at or above a grade, with qualifiers."""

from __future__ import annotations

from dataclasses import dataclass

from safety_monitor.domain.messages import AdverseEvent

NOT_ATTRIBUTED = "unknown"  # AEIRAE null: immune-relatedness not yet attributed by the investigator


@dataclass(frozen=True, slots=True)
class AeCondition:
    """Matches an AE whose MedDRA PT is in `terms` (case-insensitive) and whose grade reaches `grade_at_least`.

    `immune_related`, when set, lists the accepted AEIRAE values ("Y", "N", "U", or "unknown" for not yet
    attributed). Attribution often arrives later than the event, so a safety rule that must not wait for it
    accepts "unknown" too (DESIGN.md section 6).
    """

    terms: frozenset[str]  # case-folded MedDRA PT names
    grade_at_least: int = 1
    immune_related: frozenset[str] | None = None
    serious: bool | None = None

    kind = "ae"

    def matches(self, event: AdverseEvent) -> bool:
        if event.preferred_term.casefold() not in self.terms:
            return False
        grade = event.investigator_grade
        if grade is None or grade < self.grade_at_least:
            return False
        if self.immune_related is not None:
            attribution = event.immune_related or NOT_ATTRIBUTED
            if attribution not in self.immune_related:
                return False
        return self.serious is None or (event.serious == "Y") == self.serious
