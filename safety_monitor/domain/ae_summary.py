"""Owns the DSMB report's AE tables: treatment-emergent AEs, the overview, SOC/PT by worst grade, EAIR counts and
AEs of special interest. Counts only; confidence intervals are computed at the edge (adapters/statistics.py)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from safety_monitor.domain.conditions.ae import is_fatal
from safety_monitor.domain.exposure import DAYS_PER_YEAR, Exposure
from safety_monitor.domain.imputation import impute_onset
from safety_monitor.domain.messages import AdverseEvent

SubjectKey = tuple[str, str]

TEAE_METHOD = (
    "AEs counted are the current version of each AE record of a subject in the safety population (at least one "
    "dose) whose onset, imputed as below, is on or after the first dose and on or before the data cut "
    "(treatment-emergent). Grades are the investigator's CTCAE grade (AETOXGR); a subject counts once per term, at "
    "the worst grade. Percentages are of the safety population."
)
EAIR_METHOD = (
    "Exposure-adjusted incidence rate: subjects with the event divided by their time at risk, per 100 patient-years. "
    "Time at risk is first dose to first onset (both days counted) for a subject with the event, the subject's full "
    "exposure otherwise. 95 % interval: exact Poisson, chi-square form: [chi2(0.025; 2k) / 2, chi2(0.975; 2k + 2) / "
    "2] / patient-years x 100 (lower bound 0 when k = 0)."
)
INTERRUPTED = "DRUG INTERRUPTED"
WITHDRAWN = "DRUG WITHDRAWN"


@dataclass(frozen=True, slots=True)
class Teae:
    """A treatment-emergent AE with its imputed onset and the study day of onset (day 1 = first dose)."""

    event: AdverseEvent
    onset: date
    study_day: int

    @property
    def subject(self) -> SubjectKey:
        return (self.event.envelope.study_id, self.event.envelope.subject_id)

    @property
    def grade(self) -> int:
        return self.event.investigator_grade or 0


def treatment_emergent(events: Iterable[AdverseEvent], first_doses: Mapping[SubjectKey, date], cut: date) -> list[Teae]:
    found = []
    for event in events:
        key = (event.envelope.study_id, event.envelope.subject_id)
        first = first_doses.get(key)
        if first is None:
            continue
        onset = impute_onset(event.onset_date, first)
        if onset is None or onset < first or onset > cut:
            continue
        found.append(Teae(event, onset, (onset - first).days + 1))
    return found


def _subjects(teaes: Iterable[Teae]) -> int:
    return len({t.subject for t in teaes})


def overview(teaes: list[Teae], immune_terms: frozenset[str]) -> dict[str, int]:
    """Subjects with: any AE, grade >= 3, serious, fatal, leading to interruption / discontinuation of each drug,
    immune-related (AEIRAE = Y, or a PT the rules attribute to the checkpoint inhibitor)."""
    return {
        "any": _subjects(teaes),
        "grade_3_plus": _subjects(t for t in teaes if t.grade >= 3),
        "serious": _subjects(t for t in teaes if (t.event.serious or "") == "Y"),
        "fatal": _subjects(t for t in teaes if is_fatal(t.event)),
        "interrupted_anlotinib": _subjects(t for t in teaes if t.event.action_anlotinib == INTERRUPTED),
        "discontinued_anlotinib": _subjects(t for t in teaes if t.event.action_anlotinib == WITHDRAWN),
        "interrupted_ici": _subjects(t for t in teaes if t.event.action_ici == INTERRUPTED),
        "discontinued_ici": _subjects(t for t in teaes if t.event.action_ici == WITHDRAWN),
        "immune_related": _subjects(
            t
            for t in teaes
            if (t.event.immune_related or "") == "Y" or t.event.preferred_term.casefold() in immune_terms
        ),
    }


@dataclass(frozen=True, slots=True)
class TermGrades:
    """Subjects by worst grade (1-5) for one SOC (pt None: any PT of the SOC) or one SOC/PT."""

    soc: str
    pt: str | None
    by_grade: tuple[int, int, int, int, int]

    @property
    def subjects(self) -> int:
        return sum(self.by_grade)


def _terms(teaes: Iterable[Teae]) -> dict[tuple[str, str | None], dict[SubjectKey, Teae]]:
    """For each SOC and SOC/PT (MedDRA names compared case-insensitively), each subject's first TEAE, keeping
    the worst grade apart."""
    firsts: dict[tuple[str, str | None], dict[SubjectKey, Teae]] = {}
    for teae in teaes:
        soc, pt = teae.event.system_organ_class, teae.event.preferred_term
        keys: tuple[tuple[str, str | None], ...] = ((soc.casefold(), None), (soc.casefold(), pt.casefold()))
        for key in keys:
            held = firsts.setdefault(key, {}).get(teae.subject)
            if held is None or (teae.onset, -teae.grade) < (held.onset, -held.grade):
                firsts[key][teae.subject] = teae
    return firsts


def _spelling(teaes: Iterable[Teae]) -> dict[tuple[str, str | None], tuple[str, str | None]]:
    shown: dict[tuple[str, str | None], tuple[str, str | None]] = {}
    for teae in teaes:
        soc, pt = teae.event.system_organ_class, teae.event.preferred_term
        pairs: tuple[tuple[tuple[str, str | None], tuple[str, str | None]], ...] = (
            ((soc.casefold(), None), (soc, None)),
            ((soc.casefold(), pt.casefold()), (soc, pt)),
        )
        for key, value in pairs:
            if key not in shown or (value[0], value[1] or "") < (shown[key][0], shown[key][1] or ""):
                shown[key] = value
    return shown


def worst_grades(teaes: list[Teae]) -> list[TermGrades]:
    worst: dict[tuple[str, str | None], dict[SubjectKey, int]] = {}
    for teae in teaes:
        soc, pt = teae.event.system_organ_class.casefold(), teae.event.preferred_term.casefold()
        keys: tuple[tuple[str, str | None], ...] = ((soc, None), (soc, pt))
        for key in keys:
            subjects = worst.setdefault(key, {})
            subjects[teae.subject] = max(subjects.get(teae.subject, 0), teae.grade)
    shown = _spelling(teaes)
    rows = []
    for key in sorted(worst, key=lambda k: (k[0], k[1] is not None, k[1] or "")):
        counts = [0, 0, 0, 0, 0]
        for grade in worst[key].values():
            if 1 <= grade <= 5:
                counts[grade - 1] += 1
        shown_soc, shown_pt = shown[key]
        rows.append(TermGrades(shown_soc, shown_pt, (counts[0], counts[1], counts[2], counts[3], counts[4])))
    return rows


@dataclass(frozen=True, slots=True)
class EairCount:
    soc: str
    pt: str | None
    subjects: int
    days_at_risk: int

    @property
    def person_years(self) -> float:
        return self.days_at_risk / DAYS_PER_YEAR


def eair_counts(teaes: list[Teae], exposures: Mapping[SubjectKey, Exposure]) -> list[EairCount]:
    """Per SOC and SOC/PT: subjects with the event and the time at risk of the whole safety population."""
    firsts = _terms(teaes)
    shown = _spelling(teaes)
    total_days = sum(e.days for e in exposures.values())
    rows = []
    for key in sorted(firsts, key=lambda k: (k[0], k[1] is not None, k[1] or "")):
        with_event = firsts[key]
        days = total_days
        for subject, teae in with_event.items():
            exposure = exposures.get(subject)
            days += teae.study_day - (exposure.days if exposure is not None else 0)
        shown_soc, shown_pt = shown[key]
        rows.append(EairCount(shown_soc, shown_pt, len(with_event), days))
    return rows


@dataclass(frozen=True, slots=True)
class SpecialInterest:
    """An AE of special interest (one signal of the rules): subjects and study days of first onset."""

    signal: str
    terms: tuple[str, ...]
    grade_at_least: int
    subjects: int
    onset_days: tuple[int, ...]

    @property
    def median_onset_day(self) -> float | None:
        return float(statistics.median(self.onset_days)) if self.onset_days else None


def special_interest(teaes: list[Teae], signals: Mapping[str, tuple[frozenset[str], int]]) -> list[SpecialInterest]:
    """`signals`: signal label -> (case-folded PTs, lowest grade any of its AE rules asks for)."""
    rows = []
    for signal, (terms, grade) in sorted(signals.items()):
        first: dict[SubjectKey, int] = {}
        for teae in teaes:
            if teae.event.preferred_term.casefold() in terms and teae.grade >= grade:
                first[teae.subject] = min(first.get(teae.subject, teae.study_day), teae.study_day)
        rows.append(SpecialInterest(signal, tuple(sorted(terms)), grade, len(first), tuple(sorted(first.values()))))
    return rows
