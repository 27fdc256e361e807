"""Owns a subject's status as folded from SUBJECT events: enrolment, first dose, discontinuation, death."""

from __future__ import annotations

from dataclasses import dataclass, replace

from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.messages import SubjectEvent, SubjectEventKind


def _earliest(current: PartialDate | None, candidate: PartialDate) -> PartialDate:
    if current is None:
        return candidate
    return min(current, candidate, key=_sort_key)


def _sort_key(value: PartialDate) -> tuple[int, int, int]:
    # A partial date sorts at the start of the period it names ("2026-03" before "2026-03-05").
    return (value.year, value.month or 0, value.day or 0)


@dataclass(frozen=True, slots=True)
class SubjectEventFact:
    """A stored SUBJECT event as the reports read it: who, what, when, which drug and why."""

    study_id: str
    subject_id: str
    event: SubjectEventKind
    event_date: PartialDate
    drug: str | None = None
    reason: str | None = None


def event_fact(event: SubjectEvent) -> SubjectEventFact:
    env = event.envelope
    return SubjectEventFact(env.study_id, env.subject_id, event.event, event.event_date, event.drug, event.reason)


@dataclass(frozen=True, slots=True)
class Subject:
    """A trial subject. In the safety population once any study drug was given (`first_dose_on` set)."""

    study_id: str
    subject_id: str
    site_id: str
    arm: str | None = None
    enrolled_on: PartialDate | None = None
    first_dose_on: PartialDate | None = None
    discontinued_on: PartialDate | None = None
    died_on: PartialDate | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.study_id, self.subject_id)

    @property
    def in_safety_population(self) -> bool:
        return self.first_dose_on is not None


def apply_event(subject: Subject | None, event: SubjectEvent) -> Subject:
    """Fold one SUBJECT event into the subject's status; order-independent (earliest date of each kind wins)."""
    env = event.envelope
    current = subject or Subject(env.study_id, env.subject_id, env.site_id)
    if event.arm and current.arm is None:
        current = replace(current, arm=event.arm)
    match event.event:
        case SubjectEventKind.ENROLLED:
            return replace(current, enrolled_on=_earliest(current.enrolled_on, event.event_date))
        case SubjectEventKind.FIRST_DOSE:
            # The safety population starts at the first dose of either drug (anlotinib or the ICI).
            return replace(current, first_dose_on=_earliest(current.first_dose_on, event.event_date))
        case SubjectEventKind.DISCONTINUED:
            return replace(current, discontinued_on=_earliest(current.discontinued_on, event.event_date))
        case SubjectEventKind.DIED:
            return replace(current, died_on=_earliest(current.died_on, event.event_date))
        case _:
            return current
