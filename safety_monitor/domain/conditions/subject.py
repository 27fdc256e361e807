"""Owns the `subject` condition: a subject-status event (e.g. DIED) that is a signal in itself."""

from __future__ import annotations

from dataclasses import dataclass

from safety_monitor.domain.messages import SubjectEvent, SubjectEventKind


@dataclass(frozen=True, slots=True)
class SubjectCondition:
    """Matches a SUBJECT message whose EVENT is one of `events` (and, when set, whose REASON contains a text)."""

    events: frozenset[SubjectEventKind]
    reason_contains: tuple[str, ...] = ()  # case-folded substrings of REASON, any of them

    kind = "subject"

    def matches(self, event: SubjectEvent) -> bool:
        if event.event not in self.events:
            return False
        if not self.reason_contains:
            return True
        reason = (event.reason or "").casefold()
        return any(part in reason for part in self.reason_contains)

    @staticmethod
    def grade(event: SubjectEvent) -> int:
        """A death is CTCAE grade 5 ("death related to AE" is the AE's grade; the subject's death is the fact)."""
        return 5 if event.event is SubjectEventKind.DIED else 0
