"""Owns evaluating pattern rules on one batch: which subjects to evaluate, how much of their history to read, and
which of their stored occurrences stand.

The cost of a batch follows the batch, not the store: every kind reads only the stretch of history its
occurrences near the batch's results rest on (domain/conditions/pattern.py says why each stretch is enough).
- `repeated` and `together` only grow with data: the occurrences anchored near the new results are reported, and
  nothing is taken away.
- `hys_law` and `persistent` can lose occurrences. Their occurrences from the subject's revision mark on are
  evaluated again, the stored ones before it stand, and the stored hits become the union. When the stored hits
  were found under another ruleset or CTCAE version, or the mark cannot be shown from the stretch read, the
  subject's whole history is evaluated, as if the results had come in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date, timedelta
from typing import Protocol

from safety_monitor.domain.baselines import TestKey
from safety_monitor.domain.conditions.pattern import Mark, PatternCondition, PatternKind, occurrence_mark
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.messages import Finding
from safety_monitor.domain.rules import Rule, RuleHit, Ruleset, evaluate_pattern, pattern_alert_key
from safety_monitor.service.ports import SubjectKey, UnitOfWork
from safety_monitor.service.records import BasisRemoved, StoredFinding

_LOCAL = frozenset({PatternKind.REPEATED, PatternKind.TOGETHER})
_NO_LONGER = "the results as they stand no longer show the pattern (a result arrived that breaks it)"


class ResultHistory(Protocol):
    """Subjects' stored results as the rules read them during the batch (the batch's own laid over them)."""

    async def history(
        self, keys: Collection[TestKey], *, collected_from: str | None = None, collected_before: str | None = None
    ) -> list[StoredFinding]: ...


async def pattern_hits(
    uow: UnitOfWork,
    results: ResultHistory,
    ruleset: Ruleset,
    version: str,
    findings: Sequence[StoredFinding],
) -> tuple[list[RuleHit], list[BasisRemoved]]:
    """The pattern hits the batch's results give, and the pattern alerts left without any occurrence.

    A new result can create an occurrence only if it meets one of the pattern's evidence readings; a result that
    can only break or re-describe an occurrence (PatternCondition.may_change) matters only when the subject's
    alert exists (one key lookup for the batch). So the common case (a normal home BP reading) reads no history.
    """
    hits: list[RuleHit] = []
    removed: list[BasisRemoved] = []
    if not findings or not ruleset.pattern_rules:
        return hits, removed
    candidates: dict[str, set[SubjectKey]] = defaultdict(set)  # rule id -> subjects to evaluate
    maybe_broken: dict[str, set[SubjectKey]] = defaultdict(set)
    latest_msg: dict[tuple[str, SubjectKey], str] = {}
    changed_on: dict[tuple[str, SubjectKey], list[date | None]] = defaultdict(list)  # revisable kinds only
    creating: list[Finding] = []  # results that create an occurrence of a local pattern
    for stored in findings:
        f = stored.finding
        for rule in ruleset.pattern_rules_for(f):  # the rules one of whose readings applies to the result
            condition = _condition(rule)
            subject = _subject_of(f)
            latest_msg[(rule.id, subject)] = f.envelope.msg_id
            if condition.creates(f):
                candidates[rule.id].add(subject)
                if condition.pattern in _LOCAL and (not creating or creating[-1] is not f):
                    creating.append(f)
            elif condition.may_change(f):  # breaks a run, or excludes / adds ALP evidence in a Hy's law window
                maybe_broken[rule.id].add(subject)
            else:
                continue
            if condition.revisable:
                changed_on[(rule.id, subject)].append(f.collected_at.as_date())
    if maybe_broken:
        keys = {
            pattern_alert_key(rule_id, *subject): (rule_id, subject)
            for rule_id, subjects in maybe_broken.items()
            for subject in subjects
        }
        for key in await uow.alerts.get(keys):
            rule_id, subject = keys[key]
            candidates[rule_id].add(subject)
    if not candidates:
        return hits, removed
    rules = {r.id: r for r in ruleset.pattern_rules}
    local = {rid: subjects for rid, subjects in candidates.items() if _condition(rules[rid]).pattern in _LOCAL}
    revisable = {rid: subjects for rid, subjects in candidates.items() if rid not in local}
    by_rule: dict[str, list[RuleHit]] = {}
    if local:
        by_rule |= await _local_hits(results, ruleset, rules, version, local, creating)
    if revisable:
        found, removed = await _revised_hits(uow, results, ruleset, rules, version, revisable, changed_on, latest_msg)
        by_rule |= found
    for rule_id in sorted(by_rule):  # rule by rule, as the alerts replay them
        hits += by_rule[rule_id]
    return hits, removed


async def _local_hits(
    results: ResultHistory,
    ruleset: Ruleset,
    rules: dict[str, Rule],
    version: str,
    candidates: dict[str, set[SubjectKey]],
    creating: list[Finding],
) -> dict[str, list[RuleHit]]:
    """`repeated` and `together` are local in time and only grow with data: a new result can only complete
    occurrences within two windows of it, so only that stretch of history is read, only occurrences anchored in
    it are reported (their evidence lies wholly inside), and nothing is ever taken away."""
    days = [day for f in creating if (day := f.collected_at.as_date()) is not None]
    if not days:
        return {}
    margin = timedelta(days=max(_margin(_condition(rules[rid])) for rid in candidates))
    first, last = min(days) - margin, max(days) + margin + timedelta(days=1)
    history = await _history(results, candidates, rules, first.isoformat(), last.isoformat())
    hits: dict[str, list[RuleHit]] = {}
    for rule_id, subjects in candidates.items():
        rule = rules[rule_id]
        condition = _condition(rule)
        reach = timedelta(days=condition.window_days)
        low = min(days) - (reach if condition.pattern is PatternKind.TOGETHER else timedelta(0))
        kept = hits[rule_id] = []
        for study_id, subject_id in sorted(subjects):
            graded = [(s.finding, s.grades) for s in history.get((study_id, subject_id), [])]
            found = evaluate_pattern(ruleset, rule, study_id, subject_id, graded, version)
            kept += [h for h in found if _in(h.observed_on, low, max(days) + reach)]
    return hits


async def _revised_hits(
    uow: UnitOfWork,
    results: ResultHistory,
    ruleset: Ruleset,
    rules: dict[str, Rule],
    version: str,
    candidates: dict[str, set[SubjectKey]],
    changed_on: dict[tuple[str, SubjectKey], list[date | None]],
    latest_msg: dict[tuple[str, SubjectKey], str],
) -> tuple[dict[str, list[RuleHit]], list[BasisRemoved]]:
    """`hys_law` and `persistent`: each subject's occurrences from its revision mark on, with the stored ones
    before it; the stored hits become exactly these (a late ALP >= 2 x ULN, a late result breaking or lengthening
    a run can take occurrences away)."""
    keys = {
        pattern_alert_key(rule_id, *subject): (rule_id, subject)
        for rule_id, subjects in candidates.items()
        for subject in subjects
    }
    stamps = await uow.hits.stamps(keys)
    stamp = (ruleset.content_hash, version)
    first_changed: dict[str, date] = {}  # alert key -> the earliest day of the batch's results that matter to it
    for key, (rule_id, subject) in keys.items():
        days = changed_on.get((rule_id, subject), [])
        stored = stamps.get(key, {})
        # Stored occurrences stand only if they were found under this ruleset and CTCAE version and can be placed
        # in time; a changed result that cannot be placed (no day) may matter anywhere: the whole history, then.
        if (
            days
            and None not in days
            and all(s == stamp for s in stored.values())
            and all(occurrence_mark(o) is not None for o in stored)
        ):
            first_changed[key] = min(d for d in days if d is not None)
    marks: dict[str, Mark] = {}
    stretch: dict[SubjectKey, list[StoredFinding]] = {}
    if first_changed:
        reach = max(_condition(rules[keys[key][0]]).lookback_days for key in first_changed)
        since = min(first_changed.values()) - timedelta(days=reach)
        read = _by_rule(keys, first_changed)
        stretch = await _history(results, read, rules, since.isoformat())
        for key, first in first_changed.items():
            rule_id, subject = keys[key]
            graded = [(s.finding, s.grades) for s in stretch.get(subject, [])]
            mark = _condition(rules[rule_id]).revision_mark(graded, first)
            if mark is not None:
                marks[key] = mark
    whole = await _history(results, _by_rule(keys, keys.keys() - marks.keys()), rules)
    hits: dict[str, list[RuleHit]] = {}
    removed: list[BasisRemoved] = []
    occurrences: dict[str, set[str]] = {}  # alert key -> every occurrence the results as they stand show
    for rule_id, subjects in sorted(candidates.items()):
        rule = rules[rule_id]
        kept = hits[rule_id] = []
        for study_id, subject_id in sorted(subjects):
            key = pattern_alert_key(rule_id, study_id, subject_id)
            mark = marks.get(key)
            source = whole if mark is None else stretch
            graded = [(s.finding, s.grades) for s in source.get((study_id, subject_id), [])]
            found = evaluate_pattern(ruleset, rule, study_id, subject_id, graded, version)
            standing: set[str] = set()
            if mark is not None:
                found = [h for h in found if not _before(h.occurrence, mark)]
                standing = {o for o in stamps.get(key, {}) if _before(o, mark)}
            kept += found
            occurrences[key] = standing | {h.occurrence for h in found}
            if not occurrences[key]:
                removed.append(BasisRemoved(key, latest_msg[(rule_id, (study_id, subject_id))], _NO_LONGER))
    await uow.hits.retain(occurrences)
    return hits, removed


def _by_rule(keys: dict[str, tuple[str, SubjectKey]], wanted: Collection[str]) -> dict[str, set[SubjectKey]]:
    chosen: dict[str, set[SubjectKey]] = defaultdict(set)
    for key in wanted:
        rule_id, subject = keys[key]
        chosen[rule_id].add(subject)
    return chosen


def _before(occurrence: str, mark: Mark) -> bool:
    placed = occurrence_mark(occurrence)
    return placed is not None and placed < mark


def _margin(condition: PatternCondition) -> int:
    """Days of history either side of the new results that the occurrences reported for them rest on: a
    `repeated` occurrence on the window before its measurement, a `together` one on the window either side of a
    draw that may lie a window away from them."""
    return condition.window_days * (1 if condition.pattern is PatternKind.REPEATED else 2)


def _condition(rule: Rule) -> PatternCondition:
    assert isinstance(rule.condition, PatternCondition)
    return rule.condition


def _subject_of(finding: Finding) -> SubjectKey:
    return (finding.envelope.study_id, finding.envelope.subject_id)


def _in(observed_on: str, low: date, high: date) -> bool:
    day = PartialDate.parse(observed_on).as_date()
    return day is not None and low <= day <= high


async def _history(
    results: ResultHistory,
    candidates: dict[str, set[SubjectKey]],
    rules: dict[str, Rule],
    collected_from: str | None = None,
    collected_before: str | None = None,
) -> dict[SubjectKey, list[StoredFinding]]:
    """The candidate subjects' results of the tests their patterns read (one query)."""
    wanted: set[TestKey] = set()
    for rule_id, subjects in candidates.items():
        tests = _condition(rules[rule_id]).needed_tests()
        for study_id, subject_id in subjects:
            wanted |= {(study_id, subject_id, domain.value, test) for domain, test in tests}
    history: dict[SubjectKey, list[StoredFinding]] = defaultdict(list)
    if wanted:
        found = await results.history(wanted, collected_from=collected_from, collected_before=collected_before)
        for stored in found:
            history[_subject_of(stored.finding)].append(stored)
    return history
