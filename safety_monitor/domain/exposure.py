"""Owns treatment exposure: each subject's days on study drug, in total and per drug, as of a data cut."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from safety_monitor.domain.imputation import earliest
from safety_monitor.domain.messages import SubjectEventKind
from safety_monitor.domain.subjects import SubjectEventFact

DAYS_PER_YEAR = 365.25

METHOD = (
    "Exposure runs from the first dose (FIRST_DOSE) to the earliest of discontinuation (DISCONTINUED), completion "
    "(COMPLETED), death (DIED) and the data cut, counting both days: days = end - start + 1; patient-years = "
    "days / 365.25. Per drug, a DISCONTINUED naming the drug ends that drug only; a DISCONTINUED without a drug "
    "ends both. A subject's exposure ends when every drug they started has ended. Events after the data cut are "
    "ignored."
)

SubjectKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Exposure:
    """One subject's exposure: first dose, last day on treatment, days (both counted), days per drug."""

    study_id: str
    subject_id: str
    first_dose: date
    end: date
    days: int
    days_by_drug: tuple[tuple[str, int], ...] = ()
    on_treatment: bool = False  # no end event on or before the cut: still on treatment

    @property
    def years(self) -> float:
        return self.days / DAYS_PER_YEAR


def _min(values: Iterable[date | None]) -> date | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def subject_exposures(events: Iterable[SubjectEventFact], cut: date) -> dict[SubjectKey, Exposure]:
    """Exposure of every subject with a first dose on or before the cut."""
    by_subject: dict[SubjectKey, list[tuple[SubjectEventKind, date, str | None]]] = {}
    for event in events:
        day = earliest(event.event_date)
        if day is None or day > cut:
            continue
        by_subject.setdefault((event.study_id, event.subject_id), []).append((event.event, day, event.drug))
    exposures: dict[SubjectKey, Exposure] = {}
    for key, items in by_subject.items():
        starts: dict[str, date] = {}
        for kind, day, drug in items:
            if kind is SubjectEventKind.FIRST_DOSE:
                name = drug or "ANY"
                starts[name] = min(starts.get(name, day), day)
        if not starts:
            continue
        first = min(starts.values())
        stop_all = _min(
            day
            for kind, day, drug in items
            if kind in (SubjectEventKind.COMPLETED, SubjectEventKind.DIED)
            or (kind is SubjectEventKind.DISCONTINUED and drug is None)
        )
        per_drug: dict[str, date] = {}
        for drug, start in starts.items():
            stops = [
                day for kind, day, d in items if kind is SubjectEventKind.DISCONTINUED and d == drug and day >= start
            ]
            end = _min([*stops, stop_all, cut])
            assert end is not None
            per_drug[drug] = max(end, start)
        ended = stop_all is not None or all(
            any(k is SubjectEventKind.DISCONTINUED and d == drug for k, _, d in items) for drug in starts
        )
        end = max(per_drug.values()) if ended else cut
        if stop_all is not None:
            end = min(end, stop_all)
        end = max(min(end, cut), first)
        exposures[key] = Exposure(
            key[0],
            key[1],
            first,
            end,
            (end - first).days + 1,
            tuple(sorted((d, (per_drug[d] - starts[d]).days + 1) for d in starts if d != "ANY")),
            on_treatment=not ended,
        )
    return exposures


def total_years(exposures: Mapping[SubjectKey, Exposure]) -> float:
    return sum(e.days for e in exposures.values()) / DAYS_PER_YEAR


def years_by_drug(exposures: Mapping[SubjectKey, Exposure]) -> dict[str, float]:
    days: dict[str, int] = {}
    for exposure in exposures.values():
        for drug, n in exposure.days_by_drug:
            days[drug] = days.get(drug, 0) + n
    return {drug: n / DAYS_PER_YEAR for drug, n in sorted(days.items())}
