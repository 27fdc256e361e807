"""Owns evaluating the ruleset on one batch: derived AE grades, AE / subject / finding / pattern / cohort /
deadline rules, and which alerts lost their basis. History is read once per batch, never per message.

The batch's graded results are written after evaluation: history reads return the results stored by earlier
batches, and the batch's own (new ones, and stored ones graded again) are laid over them in memory (`_Results`),
so the bulk of what patterns and derived grades look at is never read back from the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from safety_monitor.domain.baselines import TestKey, test_key
from safety_monitor.domain.conditions.deadline import ClockKey, DeadlineCondition, SaeClock, on_report
from safety_monitor.domain.derived_grades import (
    PT_TO_CTCAE,
    AeSpan,
    DerivedGrade,
    derive_grade,
    graded_from,
    in_span,
)
from safety_monitor.domain.grading import Graded
from safety_monitor.domain.messages import AdverseEvent, Finding, SubjectEvent
from safety_monitor.domain.rules import (
    RuleHit,
    Ruleset,
    deadline_hit,
    evaluate_ae,
    evaluate_finding,
    evaluate_subject_event,
)
from safety_monitor.service.cohorts import cohort_hits
from safety_monitor.service.patterns import pattern_hits
from safety_monitor.service.ports import AeKey, HitKey, SubjectKey, UnitOfWork
from safety_monitor.service.records import BasisRemoved, StoredFinding


class _Results:
    """Subjects' results as the rules read them during one batch: what the store holds (it does not hold the
    batch's results yet) with the batch's graded results laid over it by msg_id."""

    def __init__(self, uow: UnitOfWork, batch: Iterable[StoredFinding]) -> None:
        self._uow = uow
        self._batch: dict[TestKey, dict[str, StoredFinding]] = {}
        for stored in batch:  # new results, then stored ones graded again: distinct msg_ids
            self._batch.setdefault(test_key(stored.finding), {})[stored.finding.envelope.msg_id] = stored

    async def history(
        self, keys: Collection[TestKey], *, collected_from: str | None = None, collected_before: str | None = None
    ) -> list[StoredFinding]:
        """`FindingRepository.history` as it will read once the batch is written (same keys, same window)."""
        stored = await self._uow.findings.history(
            keys, collected_from=collected_from, collected_before=collected_before
        )
        found = {s.finding.envelope.msg_id: s for s in stored}
        for key in keys:
            for msg_id, result in self._batch.get(key, {}).items():
                collected = result.finding.collected_at
                if (
                    not collected.is_complete  # a date without its day cannot be placed: always read, as stored
                    or (
                        (collected_from is None or collected.text >= collected_from)
                        and (collected_before is None or collected.text < collected_before)
                    )
                ):
                    found[msg_id] = result
        return list(found.values())


@dataclass
class Evaluation:
    """What the rules said about one batch."""

    hits: list[RuleHit] = field(default_factory=list)
    ae_removals: list[AdverseEvent] = field(default_factory=list)  # follow-ups that may remove AE-rule alerts
    removed: list[BasisRemoved] = field(default_factory=list)
    derived_changed: int = 0
    clocks_started: int = 0


async def evaluate_batch(
    uow: UnitOfWork,
    ruleset: Ruleset,
    ctcae_version: str,
    *,
    subject_events: Sequence[SubjectEvent],
    applied: Sequence[AdverseEvent],
    replacing: set[str],
    new_findings: Sequence[StoredFinding],
    regraded: Sequence[StoredFinding],
    baselines: Mapping[TestKey, Finding],
) -> Evaluation:
    """Evaluate every rule kind on the batch. `applied` are the AE versions that became current (in arrival
    order); `new_findings` the batch's graded results and `regraded` stored ones graded again, neither written
    yet (the caller writes them after this); `baselines` the baseline of each of their tests that has one."""
    result = Evaluation()
    results = _Results(uow, [*new_findings, *regraded])
    aes = await _derive_grades(uow, results, applied, new_findings, regraded, result)
    for event in aes:
        event_hits = evaluate_ae(ruleset, event, ctcae_version)
        result.hits.extend(event_hits)
        # Only a follow-up can take away the basis of an alert its earlier version raised.
        if event.envelope.msg_id in replacing and len(event_hits) < len(ruleset.ae_rules):
            result.ae_removals.append(event)
    for subject_event in subject_events:
        result.hits.extend(evaluate_subject_event(ruleset, subject_event, ctcae_version))
    findings = [*new_findings, *regraded]
    _finding_rules(ruleset, ctcae_version, findings, baselines, result)
    await _withdraw_regraded_hits(uow, ruleset, regraded, result)
    # Stored results graded again count too: a pattern hit's grade is the worst among its evidence.
    hits, removed = await pattern_hits(uow, results, ruleset, ctcae_version, findings)
    result.hits.extend(hits)
    result.removed.extend(removed)
    result.hits.extend(await cohort_hits(uow, ruleset, ctcae_version, applied, subject_events))
    await _deadline_rules(uow, ruleset, ctcae_version, applied, result)
    return result


# --- derived AE grades ---------------------------------------------------------------------------------------

_MAPPED_TESTS = frozenset((g.domain, t) for g in PT_TO_CTCAE.values() for t in g.tests)


def _subject_of(finding: Finding) -> SubjectKey:
    return (finding.envelope.study_id, finding.envelope.subject_id)


async def _derive_grades(
    uow: UnitOfWork,
    results: _Results,
    applied: Sequence[AdverseEvent],
    new_findings: Sequence[StoredFinding],
    regraded: Sequence[StoredFinding],
    result: Evaluation,
) -> list[AdverseEvent]:
    """The AEs to evaluate: the applied versions with their derived grades, then current AEs whose derived grade
    changed because results arrived or were graded again (evaluated again: a derived grade can raise an alert).

    An applied version, or an AE of a subject with a result graded again, is derived from the history (its span
    may have moved; a grade may have fallen). New results only fold into the stored grade, which is a maximum:
    for that the AEs' spans are read, and whole records only for those whose grade rose.
    """
    current: dict[AeKey, AdverseEvent] = {e.record_key: e for e in applied}
    fresh = [s for s in new_findings if (s.finding.domain, s.finding.test_code) in _MAPPED_TESTS]
    again = [s for s in regraded if (s.finding.domain, s.finding.test_code) in _MAPPED_TESTS]
    again_subjects = {_subject_of(s.finding) for s in again}
    fold_subjects = {_subject_of(s.finding) for s in fresh} - again_subjects
    others: list[AdverseEvent] = []
    if again_subjects:
        found = await uow.adverse_events.for_subjects(again_subjects, PT_TO_CTCAE.keys())
        others = [e for e in found if e.record_key not in current]
    spans: list[AeSpan] = []
    if fold_subjects:
        spans = [
            s for s in await uow.adverse_events.spans(fold_subjects, PT_TO_CTCAE.keys()) if s.record_key not in current
        ]
    full = [e for e in applied if graded_from(e) is not None] + [e for e in others if graded_from(e) is not None]
    history: dict[SubjectKey, list[StoredFinding]] = defaultdict(list)
    if full:
        keys: set[TestKey] = set()
        for event in full:
            mapping = graded_from(event)
            assert mapping is not None
            keys |= {(*event.record_key[:2], mapping.domain.value, t) for t in mapping.tests}
        # Results before the earliest onset cannot count (the span starts at onset); results dated without a
        # day are always read (in_span decides them).
        onsets = [e.onset_date.text for e in full if e.onset_date is not None]
        since = min(onsets) if len(onsets) == len(full) else None
        for stored in await results.history(keys, collected_from=since):
            history[_subject_of(stored.finding)].append(stored)
    changed: list[AdverseEvent] = []
    to_store: list[AdverseEvent] = []
    for event in full:
        derived = derive_grade(event, ((s.finding, s.grades) for s in history[event.record_key[:2]]))
        if derived is None or (derived.grade, derived.term) == (event.derived_grade, event.derived_term):
            continue
        updated = replace(event, derived_grade=derived.grade, derived_term=derived.term)
        to_store.append(updated)
        if event.record_key in current:
            current[event.record_key] = updated
        else:
            changed.append(updated)
    fresh_by_subject: dict[SubjectKey, list[StoredFinding]] = defaultdict(list)
    for stored in fresh:
        fresh_by_subject[_subject_of(stored.finding)].append(stored)
    risen: dict[AeKey, DerivedGrade] = {}
    for span in spans:
        derived = _fold(span, fresh_by_subject.get(span.record_key[:2], ()))
        if derived is not None and (derived.grade, derived.term) != (span.derived_grade, span.derived_term):
            risen[span.record_key] = derived
    if risen:
        for key, event in sorted((await uow.adverse_events.current(risen)).items()):
            derived = risen[key]
            updated = replace(event, derived_grade=derived.grade, derived_term=derived.term)
            to_store.append(updated)
            changed.append(updated)
    if to_store:
        await uow.adverse_events.put_current(to_store)
    result.derived_changed = len(changed)
    # Applied versions in arrival order (their hits replay in that order); the last version of a record carries
    # its derived grade. Then the current AEs re-derived because of new results.
    last = {e.record_key: e.envelope.msg_id for e in applied}
    ordered = [current[e.record_key] if last[e.record_key] == e.envelope.msg_id else e for e in applied]
    return ordered + changed


def _fold(span: AeSpan, fresh: Iterable[StoredFinding]) -> DerivedGrade | None:
    """The stored derived grade raised by the batch's new results (of the AE's subject) in its term and span."""
    mapping = PT_TO_CTCAE.get(span.preferred_term.casefold())
    if mapping is None:
        return None
    worst = span.derived_grade
    term = mapping.ctcae_term.casefold()
    for stored in fresh:
        f = stored.finding
        if (
            f.domain is not mapping.domain
            or f.test_code not in mapping.tests
            or not in_span(f.collected_at, span.onset_date, span.end_date)
        ):
            continue
        for grade in stored.grades:
            if isinstance(grade, Graded) and grade.term.casefold() == term:
                worst = grade.grade if worst is None else max(worst, grade.grade)
    return DerivedGrade(mapping.ctcae_term, worst)


# --- lab, vital, ECG -----------------------------------------------------------------------------------------


def _finding_rules(
    ruleset: Ruleset,
    version: str,
    findings: Sequence[StoredFinding],
    baselines: Mapping[TestKey, Finding],
    result: Evaluation,
) -> None:
    for stored in findings:
        if not ruleset.finding_rules_for(stored.finding):
            continue  # no rule is about this test (most results)
        baseline = baselines.get(test_key(stored.finding))
        result.hits.extend(evaluate_finding(ruleset, stored.finding, stored.grades, version, baseline))


async def _withdraw_regraded_hits(
    uow: UnitOfWork, ruleset: Ruleset, regraded: Sequence[StoredFinding], result: Evaluation
) -> None:
    """A stored result graded again (a late baseline, a first dose, a same-draw companion) may no longer meet a
    rule it met. Its hit is withdrawn, and an alert left with no result meeting the rule gets an update (basis
    removed), never a silent delete: docs/architecture.md ("Rules and routing"): "a correction that removes an
    alert's basis sends an
    update". E.g. ALT 130 U/L first graded 2 against ULN, then against an abnormal baseline of 110: grade 0."""
    candidates: set[HitKey] = set()
    for stored in regraded:
        env = stored.finding.envelope
        candidates.update(
            (r.id, env.study_id, env.subject_id, env.msg_id) for r in ruleset.finding_rules_for(stored.finding)
        )
    hit_now = {(h.rule.id, h.study_id, h.subject_id, h.occurrence) for h in result.hits}
    withdrawn = await uow.hits.alert_keys(candidates - hit_now) if candidates - hit_now else {}
    if not withdrawn:
        return
    evidence = await uow.hits.occurrences(set(withdrawn.values()))
    remaining = {
        alert_key: occurrences - {key[3] for key, a in withdrawn.items() if a == alert_key}
        for alert_key, occurrences in evidence.items()
    }
    await uow.hits.retain(remaining)
    supported_now = {h.alert_key for h in result.hits}
    for key, alert_key in sorted(withdrawn.items(), key=lambda item: item[0]):
        if remaining.get(alert_key) or alert_key in supported_now:
            continue
        reason = "graded again (a late baseline or companion result), the result no longer meets the rule"
        result.removed.append(BasisRemoved(alert_key, key[3], reason))
        supported_now.add(alert_key)  # one update per alert


# --- deadlines -----------------------------------------------------------------------------------------------


async def _deadline_rules(
    uow: UnitOfWork, ruleset: Ruleset, version: str, applied: Sequence[AdverseEvent], result: Evaluation
) -> None:
    """Start the reporting clock of each new potential SUSAR (raising its alert), and shorten a running clock
    when a follow-up makes the case fatal or life-threatening. Reminders and overdue: service/deadlines.py."""
    if not applied or not ruleset.deadline_rules:
        return
    candidates = [
        e
        for e in applied
        if any(
            isinstance(r.condition, DeadlineCondition) and (r.condition.starts(e) or r.condition.is_short(e))
            for r in ruleset.deadline_rules
        )
    ]
    if not candidates:
        return
    keys: set[tuple[str, ClockKey]] = {(r.id, e.record_key) for e in candidates for r in ruleset.deadline_rules}
    clocks = await uow.sae_clocks.get(keys)
    touched: dict[tuple[str, ClockKey], SaeClock] = {}
    for event in candidates:
        for rule in ruleset.deadline_rules:
            assert isinstance(rule.condition, DeadlineCondition)
            key = (rule.id, event.record_key)
            before = clocks.get(key)
            after = on_report(before, rule.condition, rule.id, event)
            if after is None or after == before:
                continue
            clocks[key] = touched[key] = after
            # Started, or shortened to the 7-day clock by a fatal / life-threatening follow-up: the alert hears it
            # (a follow-up at a higher grade escalates it).
            result.clocks_started += before is None
            result.hits.append(deadline_hit(ruleset, rule, after, event, version))
    if touched:
        await uow.sae_clocks.put(list(touched.values()))
