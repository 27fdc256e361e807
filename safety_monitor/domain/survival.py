"""Owns the definitions of the protocol's time-to-event endpoints (OS, PFS): origin, event and censoring dates.

The estimates themselves (Kaplan-Meier) are computed at the edge (adapters/statistics.py) from these records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.imputation import earliest
from safety_monitor.domain.messages import OverallResponse, SubjectEventKind, TumourResponse
from safety_monitor.domain.subjects import SubjectEventFact

SubjectKey = tuple[str, str]

METHOD = (
    "Time origin: randomisation (RANDOMIZED), enrolment (ENROLLED) when a subject has no randomisation. Time in days "
    "is date minus origin (no +1). OS: event = death on or before the data cut; otherwise censored at the last date "
    "the subject is known alive: their latest complete clinical date (EVENTDTC, AESTDTC, AEENDTC, LBDTC, VSDTC, "
    "EGDTC, RSDTC) on or before the cut, never a transmission time. PFS: event = the first of a documented "
    "progression (PROGRESSED), an overall response of PD, or death; otherwise censored at the last tumour assessment "
    "other than NE, at the origin when there is none. Only assessments with a complete RSDTC on or before the cut "
    "count. Kaplan-Meier estimates (lifelines); medians with 95 % intervals from the pointwise log(-log) intervals of "
    "the curve. Numbers at risk are subjects with time >= t."
)


@dataclass(frozen=True, slots=True)
class TimeToEvent:
    """One subject's time to event (days from origin) and whether the event was observed (False: censored)."""

    study_id: str
    subject_id: str
    origin: date
    end: date
    event: bool

    @property
    def days(self) -> int:
        return (self.end - self.origin).days


def origins(events: Iterable[SubjectEventFact], cut: date) -> dict[SubjectKey, date]:
    """Randomisation date, enrolment date where there is none; only dates on or before the cut."""
    randomised: dict[SubjectKey, date] = {}
    enrolled: dict[SubjectKey, date] = {}
    for event in events:
        day = earliest(event.event_date)
        if day is None or day > cut:
            continue
        key = (event.study_id, event.subject_id)
        if event.event is SubjectEventKind.RANDOMIZED:
            randomised[key] = min(randomised.get(key, day), day)
        elif event.event is SubjectEventKind.ENROLLED:
            enrolled[key] = min(enrolled.get(key, day), day)
    return enrolled | randomised


def death_dates(events: Iterable[SubjectEventFact], cut: date) -> dict[SubjectKey, date]:
    deaths: dict[SubjectKey, date] = {}
    for event in events:
        day = earliest(event.event_date)
        if event.event is SubjectEventKind.DIED and day is not None and day <= cut:
            key = (event.study_id, event.subject_id)
            deaths[key] = min(deaths.get(key, day), day)
    return deaths


def complete_on_or_before(value: PartialDate | None, cut: date) -> date | None:
    """A complete date on or before the cut, else None (partial dates never censor or count as assessments)."""
    if value is None:
        return None
    day = value.as_date()
    return day if day is not None and day <= cut else None


def assessments(responses: Iterable[TumourResponse], cut: date) -> dict[SubjectKey, list[tuple[date, OverallResponse]]]:
    """Each subject's overall responses with a complete RSDTC on or before the cut, in date order."""
    found: dict[SubjectKey, list[tuple[date, OverallResponse]]] = {}
    for response in responses:
        day = complete_on_or_before(response.assessed_on, cut)
        if day is not None and response.test_code == "OVRLRESP":
            found.setdefault((response.envelope.study_id, response.envelope.subject_id), []).append(
                (day, response.response)
            )
    return {key: sorted(items) for key, items in found.items()}


def overall_survival(
    origin: Mapping[SubjectKey, date], deaths: Mapping[SubjectKey, date], last_alive: Mapping[SubjectKey, date]
) -> list[TimeToEvent]:
    records = []
    for key, start in sorted(origin.items()):
        if key in deaths:
            records.append(TimeToEvent(key[0], key[1], start, max(deaths[key], start), True))
        else:
            records.append(TimeToEvent(key[0], key[1], start, max(last_alive.get(key, start), start), False))
    return records


def progression_free_survival(
    origin: Mapping[SubjectKey, date],
    deaths: Mapping[SubjectKey, date],
    events: Iterable[SubjectEventFact],
    responses: Mapping[SubjectKey, list[tuple[date, OverallResponse]]],
    cut: date,
) -> list[TimeToEvent]:
    progressed: dict[SubjectKey, date] = {}
    for event in events:
        if event.event is SubjectEventKind.PROGRESSED:
            day = earliest(event.event_date)
            if day is not None and day <= cut:
                key = (event.study_id, event.subject_id)
                progressed[key] = min(progressed.get(key, day), day)
    records = []
    for key, start in sorted(origin.items()):
        candidates = [d for d, r in responses.get(key, []) if r is OverallResponse.PD]
        candidates += [d for d in (progressed.get(key), deaths.get(key)) if d is not None]
        if candidates:
            records.append(TimeToEvent(key[0], key[1], start, max(min(candidates), start), True))
            continue
        evaluated = [d for d, r in responses.get(key, []) if r is not OverallResponse.NE]
        records.append(TimeToEvent(key[0], key[1], start, max([start, *evaluated]), False))
    return records
