"""Owns evaluating the cohort rules on a batch: every look of a study (the onset dates of its qualifying AEs)
against the stopping boundary, again whenever the cohort's data change."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from safety_monitor.domain.conditions.cohort import CohortCondition, CohortStatus
from safety_monitor.domain.incidence import sourced_fact
from safety_monitor.domain.messages import AdverseEvent, SubjectEvent, SubjectEventKind
from safety_monitor.domain.rules import Rule, RuleHit, Ruleset, cohort_hit
from safety_monitor.service.ports import SubjectKey, UnitOfWork


async def cohort_hits(
    uow: UnitOfWork,
    ruleset: Ruleset,
    version: str,
    applied: Sequence[AdverseEvent],
    subject_events: Sequence[SubjectEvent],
) -> list[RuleHit]:
    """Each qualifying AE is a look: the cohort is evaluated as of its onset date (event time; the receipt date when
    the onset is not a full date), over current records, and a crossed boundary is a hit.

    Every look of a study is evaluated again whenever the cohort's data change: an AE of the rules' terms (a new
    one, or a follow-up that changes its grade or onset) or a first dose. Evaluating only the look of the AE that
    just arrived would miss a crossing whose events arrive out of onset order (a site's late data entry, or
    subjects on different Kafka partitions): the later look, taken first, lacked the earlier event, and the
    earlier look, taken last, excludes the later one. Now the looks end up as they would be had everything
    arrived in order. Hits come out in look order, so the alert's detail is that of the latest crossed look."""
    rules = [r for r in ruleset.cohort_rules if isinstance(r.condition, CohortCondition)]
    if not rules or not (applied or subject_events):
        return []
    terms = {t for r in rules if isinstance(r.condition, CohortCondition) for t in r.condition.terms}
    studies = {e.envelope.study_id for e in applied if e.preferred_term.casefold() in terms}
    studies |= {e.envelope.study_id for e in subject_events if e.event is SubjectEventKind.FIRST_DOSE}
    if not studies:
        return []
    # One read serves both the boundary (every qualifying AE of the study) and the looks (those of the subjects
    # with one): reading the candidates' records again, whole, cost as much as the rest of the evaluation. Only
    # AEs at the lowest grade any cohort rule counts are read: the others take part in no boundary and no look
    # (a fifth of the AEs of these terms qualify in the scale benchmark's trial, and this read grows with it).
    lowest = min(r.condition.grade_at_least for r in rules if isinstance(r.condition, CohortCondition))
    records = await uow.adverse_events.sourced_facts(terms, lowest)
    facts = [r.fact for r in records]
    candidates = {
        (f.study_id, f.subject_id)
        for f in facts
        if f.study_id in studies
        and any(isinstance(r.condition, CohortCondition) and r.condition.qualifies(f.pt, f.grade) for r in rules)
    }
    if not candidates:
        return []
    current = {(r.fact.study_id, r.fact.subject_id, r.aespid): r for r in records if r.fact.subject_key in candidates}
    for event in applied:  # the batch's own versions, should the store not show them yet
        if (event.envelope.study_id, event.envelope.subject_id) in candidates:
            current[event.record_key] = sourced_fact(event)
    population = await uow.subjects.safety_population()
    first_doses: dict[SubjectKey, date | None] = {
        key: subject.first_dose_on.as_date() if subject.first_dose_on else None for key, subject in population.items()
    }
    looks: list[tuple[date, str, Rule, str]] = []
    for record in current.values():
        fact = record.fact
        on = (fact.onset_date.as_date() if fact.onset_date else None) or record.sent_at.date()
        for rule in rules:
            assert isinstance(rule.condition, CohortCondition)
            if rule.condition.qualifies(fact.pt, record.investigator_grade):
                looks.append((on, record.msg_id, rule, fact.study_id))
    # The cohort as of a day is the same for every qualifying AE with that onset: evaluated once per day, all the
    # days of a rule and study in one pass over the facts.
    days: dict[tuple[str, str], set[date]] = defaultdict(set)
    for on, _, rule, study_id in looks:
        days[(rule.id, study_id)].add(on)
    by_id = {rule.id: rule for rule in rules}
    statuses: dict[tuple[str, str, date], CohortStatus] = {}
    for (rule_id, study_id), dates in days.items():
        condition = by_id[rule_id].condition
        assert isinstance(condition, CohortCondition)
        for on, status in condition.evaluate_many(study_id, dates, facts, first_doses).items():
            statuses[(rule_id, study_id, on)] = status
    hits: list[RuleHit] = []
    for on, msg_id, rule, study_id in sorted(looks, key=lambda look: (look[0], look[1], look[2].id)):
        status = statuses[(rule.id, study_id, on)]
        if status.status.crossed:
            hits.append(cohort_hit(ruleset, rule, status, msg_id, version))
    return hits
