"""Owns cumulative AE incidence: subjects once per (SOC, PT) at their worst grade, over the safety population."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.messages import AdverseEvent

ANY_GRADE = "any"
GRADE_3_PLUS = ">=3"


@dataclass(frozen=True, slots=True)
class AeFact:
    """The part of a subject's current AE record that incidence needs."""

    study_id: str
    subject_id: str
    soc: str
    pt: str
    grade: int
    onset_date: PartialDate | None

    @property
    def subject_key(self) -> tuple[str, str]:
        return (self.study_id, self.subject_id)


@dataclass(frozen=True, slots=True)
class SourcedAeFact:
    """A current AE record's fact with what a cohort look also needs: the record's key, the message of its
    current version, when that was sent, and the investigator's grade as reported (None when left out)."""

    fact: AeFact
    aespid: str
    msg_id: str
    sent_at: datetime
    investigator_grade: int | None


def sourced_fact(event: AdverseEvent) -> SourcedAeFact:
    env = event.envelope
    grade = event.investigator_grade
    fact = AeFact(
        env.study_id, env.subject_id, event.system_organ_class, event.preferred_term, grade or 0, event.onset_date
    )
    return SourcedAeFact(fact, event.ae_spid, env.msg_id, env.sent_at, grade)


@dataclass(frozen=True, slots=True)
class IncidenceRow:
    study_id: str
    soc: str
    pt: str
    grade_band: str  # "any" or ">=3"
    subjects: int
    denominator: int
    percent: float


def is_treatment_emergent(onset: PartialDate | None, first_dose: date | None) -> bool:
    """Onset on or after the first dose. Undecidable cases (missing or too-partial dates) count as emergent,
    the conservative convention for safety reporting (an AE is not excluded for lack of a full date)."""
    if onset is None or first_dose is None:
        return True
    decided = onset.on_or_after(first_dose)
    return True if decided is None else decided


def compute_incidence(
    events: Iterable[AeFact],
    safety_population: Mapping[tuple[str, str], date | None],
    *,
    treatment_emergent_only: bool = False,
) -> list[IncidenceRow]:
    """Incidence per study, SOC and PT in two bands (any grade, grade >= 3).

    `safety_population` maps (study_id, subject_id) of every dosed subject to the first-dose date (None when
    only partially known). AEs of subjects outside it (not yet known, or never dosed) are not counted; they
    enter as soon as the subject's FIRST_DOSE arrives, because incidence is recomputed from current records.
    """
    worst: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
    spelling: dict[tuple[str, str, str], tuple[str, str]] = {}
    for event in events:
        subject = (event.study_id, event.subject_id)
        if subject not in safety_population:
            continue
        if treatment_emergent_only and not is_treatment_emergent(event.onset_date, safety_population[subject]):
            continue
        # MedDRA names are matched case-insensitively; one spelling is shown (the first in sort order).
        term_key = (event.study_id, event.soc.casefold(), event.pt.casefold())
        shown = (event.soc, event.pt)
        if term_key not in spelling or shown < spelling[term_key]:
            spelling[term_key] = shown
        by_subject = worst[term_key]
        by_subject[event.subject_id] = max(by_subject.get(event.subject_id, 0), event.grade)
    denominators: dict[str, int] = defaultdict(int)
    for study_id, _subject in safety_population:
        denominators[study_id] += 1
    rows = []
    for term_key in sorted(worst, key=lambda k: (k[0], *spelling[k])):
        study_id = term_key[0]
        soc, pt = spelling[term_key]
        grades = worst[term_key].values()
        denominator = denominators[study_id]
        for band, count in ((ANY_GRADE, len(grades)), (GRADE_3_PLUS, sum(1 for g in grades if g >= 3))):
            percent = round(100.0 * count / denominator, 1) if denominator else 0.0
            rows.append(IncidenceRow(study_id, soc, pt, band, count, denominator, percent))
    return rows
