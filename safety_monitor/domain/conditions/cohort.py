"""Owns the `cohort` condition: incidence of a term set in the evaluable safety population against a stopping
boundary (Bayesian beta-binomial or Wald SPRT, domain/boundaries.py), evaluated at each new qualifying event."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from safety_monitor.domain.boundaries import BoundaryStatus, evaluate_beta_binomial, evaluate_sprt
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.incidence import AeFact


@dataclass(frozen=True, slots=True)
class BetaBinomial:
    """Stop when Pr(rate > theta | data) > cutoff under a Beta(a, b) prior (Thall, Simon & Estey 1995)."""

    theta: float
    a: float
    b: float
    cutoff: float

    def evaluate(self, events: int, evaluable: int) -> BoundaryStatus:
        return evaluate_beta_binomial(self.theta, self.a, self.b, self.cutoff, events, evaluable)

    def describe(self, status: BoundaryStatus) -> str:
        return (
            f"Pr(rate > {self.theta:g}) = {status.statistic:.3f} against cutoff {self.cutoff:g} "
            f"(Beta({self.a:g}, {self.b:g}) prior)"
        )


@dataclass(frozen=True, slots=True)
class Sprt:
    """Wald SPRT, H0: p = p0 against H1: p = p1; stop when the log-likelihood ratio reaches log((1-beta)/alpha)."""

    p0: float
    p1: float
    alpha: float
    beta: float

    def evaluate(self, events: int, evaluable: int) -> BoundaryStatus:
        return evaluate_sprt(self.p0, self.p1, self.alpha, self.beta, events, evaluable)

    def describe(self, status: BoundaryStatus) -> str:
        return (
            f"LLR = {status.statistic:.3f} against the stop boundary {status.boundary:.3f} "
            f"(p0 {self.p0:g}, p1 {self.p1:g}, alpha {self.alpha:g}, beta {self.beta:g})"
        )


Boundary = BetaBinomial | Sprt


@dataclass(frozen=True, slots=True)
class CohortStatus:
    """The cohort on one evaluation date: events, evaluable subjects, and where they stand against the boundary."""

    study_id: str
    on: date
    events: int
    evaluable: int
    status: BoundaryStatus
    detail: str


def _on_or_before(value: PartialDate | None, limit: date) -> bool:
    """Known to be on or before `limit`, or undecidable (counted: a partial date is not excluded for vagueness)."""
    if value is None:
        return True
    after = value.on_or_after(limit + timedelta(days=1))
    return after is None or not after


def _counted_from(value: PartialDate | None) -> date:
    """The first evaluation date on which `_on_or_before` counts `value` (it keeps counting it on every later date).

    A full date counts from that day. A truncated date counts from the day before its first possible day:
    `_on_or_before` compares it with the day after the evaluation date at the precision given, and on the day
    before its month (or year) begins that comparison is already undecidable, so it counts."""
    if value is None:
        return date.min
    if value.month is None:
        return date(value.year, 1, 1) - timedelta(days=1) if value.year > 1 else date.min
    if value.day is None:
        first = date(value.year, value.month, 1)
        return first - timedelta(days=1) if first > date.min else date.min
    return date(value.year, value.month, value.day)


@dataclass(frozen=True, slots=True)
class CohortCondition:
    """Subjects with an AE in `terms` at `grade_at_least` (investigator grade) among the evaluable subjects.

    Evaluable (the DSMB charter's denominator, docs/clinical-decisions.md): dosed at least `min_days_on_treatment` days
    before the evaluation date, or had the event. Only subjects in the safety population (a first dose) count.
    """

    terms: frozenset[str]  # case-folded MedDRA PT names
    grade_at_least: int
    boundary: Boundary
    min_days_on_treatment: int = 0

    kind = "cohort"

    def qualifies(self, pt: str, grade: int | None) -> bool:
        return pt.casefold() in self.terms and grade is not None and grade >= self.grade_at_least

    def evaluate(
        self, study_id: str, on: date, facts: Iterable[AeFact], first_doses: Mapping[tuple[str, str], date | None]
    ) -> CohortStatus:
        """The cohort as of `on`: events with onset on or before it, subjects evaluable by then."""
        with_event = {
            f.subject_id
            for f in facts
            if f.study_id == study_id
            and (study_id, f.subject_id) in first_doses
            and self.qualifies(f.pt, f.grade)
            and _on_or_before(f.onset_date, on)
        }
        cutoff = _cutoff(on, self.min_days_on_treatment)
        dosed_long_enough = {
            subject
            for (study, subject), first in first_doses.items()
            if study == study_id and first is not None and first <= cutoff
        }
        return self._status(study_id, on, len(with_event), len(dosed_long_enough | with_event))

    def evaluate_many(
        self,
        study_id: str,
        dates: Iterable[date],
        facts: Iterable[AeFact],
        first_doses: Mapping[tuple[str, str], date | None],
    ) -> dict[date, CohortStatus]:
        """`evaluate` on each of `dates`, with the same results, at the cost of one pass over the facts and the
        population and then a few steps per date (the pipeline evaluates every look of a study whenever its cohort
        changes, so `evaluate` per look would cost looks x facts)."""
        counted_from: dict[str, date] = {}  # subject -> first date on which one of its qualifying AEs counts
        for f in facts:
            if f.study_id == study_id and (study_id, f.subject_id) in first_doses and self.qualifies(f.pt, f.grade):
                start = _counted_from(f.onset_date)
                known = counted_from.get(f.subject_id)
                counted_from[f.subject_id] = start if known is None else min(known, start)
        dosed = sorted(first for (study, _), first in first_doses.items() if study == study_id and first is not None)
        by_start = sorted(counted_from.items(), key=lambda item: item[1])
        # Dates ascending: the subjects with an event so far only grow, and so does the cutoff, so each subject
        # is taken in once and the ones also dosed by the cutoff are a bisection of their sorted first doses.
        with_event = 0
        their_doses: list[date] = []  # first doses of the subjects with an event so far, sorted
        statuses: dict[date, CohortStatus] = {}
        for on in sorted(set(dates)):
            while with_event < len(by_start) and by_start[with_event][1] <= on:
                first = first_doses.get((study_id, by_start[with_event][0]))
                if first is not None:
                    insort(their_doses, first)
                with_event += 1
            cutoff = _cutoff(on, self.min_days_on_treatment)
            also_dosed = bisect_right(their_doses, cutoff)
            evaluable = bisect_right(dosed, cutoff) + with_event - also_dosed
            statuses[on] = self._status(study_id, on, with_event, evaluable)
        return statuses

    def _status(self, study_id: str, on: date, events: int, evaluable: int) -> CohortStatus:
        status = self.boundary.evaluate(events, evaluable)
        verdict = "CROSSED" if status.crossed else "not crossed"
        detail = f"{events} of {evaluable} evaluable subjects as of {on.isoformat()}: {self.boundary.describe(status)}"
        return CohortStatus(study_id, on, events, evaluable, status, f"{detail}; boundary {verdict}")


def _cutoff(on: date, min_days_on_treatment: int) -> date:
    """The latest first dose that makes a subject evaluable on `on`."""
    return on - timedelta(days=min_days_on_treatment)
