"""Owns grading findings in the stream: each subject's baseline per test, same-draw companions, re-grading.

A result is graded against the subject's baseline for the same test (the record flagged --BLFL = "Y", else the
last result on or before the first dose). Messages arrive in any order, so a baseline, a first dose or a
same-draw companion (albumin for calcium, FT4 for TSH) may arrive after the results that need it: then the
affected stored results are graded again, and the rules see the new grades (which can raise or escalate
alerts). Re-grading touches only the subjects and tests whose context changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from safety_monitor.domain.baselines import TestKey, choose_baseline, test_key
from safety_monitor.domain.grading import SAME_DAY_NUMERIC, SAME_DAY_NUMERIC_TESTS, SAME_DRAW_CONTEXT, FindingGrader
from safety_monitor.domain.messages import Finding
from safety_monitor.domain.subjects import Subject
from safety_monitor.service.ports import DrawKey, SubjectKey, UnitOfWork
from safety_monitor.service.records import StoredFinding

# companion test -> the tests it gives context to ("ALB" -> ("CA",))
_DEPENDENTS: Mapping[str, tuple[str, ...]] = {
    companion: tuple(t for t, companions in SAME_DRAW_CONTEXT.items() if companion in companions)
    for companions in SAME_DRAW_CONTEXT.values()
    for companion in companions
}

_SAME_DRAW_TESTS = frozenset(SAME_DRAW_CONTEXT) | frozenset(_DEPENDENTS)


@dataclass(frozen=True, slots=True)
class GradedFindings:
    new: list[StoredFinding]  # the batch's findings, graded
    regraded: list[StoredFinding]  # stored findings whose grades changed because their context changed
    # The baseline of every test of `new` and `regraded` that has one, as stored after this batch (rules that
    # compare with the baseline read it here instead of reading it back).
    baselines: Mapping[TestKey, Finding] = field(default_factory=dict)


def _draw_key(finding: Finding, test: str) -> DrawKey:
    env = finding.envelope
    return (env.study_id, env.subject_id, test, finding.collected_at.text)


def may_be_baseline(finding: Finding, first_dose: date | None) -> bool:
    """Whether a result can be a baseline at all: flagged, or collected on or before a known first dose
    (the same test `choose_baseline` applies; this only saves the choice for the results that cannot win)."""
    if finding.baseline_flag:
        return True
    if first_dose is None:
        return False
    return finding.collected_at.on_or_after(first_dose) is not True or finding.collected_at.as_date() == first_dose


def _is_character(finding: Finding) -> bool:
    """A character-only result (LBSTRESC without LBSTRESN), such as a urine dipstick "2+"."""
    return finding.value is None and bool(finding.result_text and finding.result_text.strip())


DayKey = tuple[TestKey, date]


async def _same_day(
    uow: UnitOfWork, findings: Sequence[Finding], batch_ids: set[str]
) -> tuple[dict[DayKey, list[Finding]], list[StoredFinding]]:
    """Results of SAME_DAY_NUMERIC_TESTS by (test, collection day), from the batch and the store; and the stored
    character results whose same-day numeric partner arrived in this batch (to be graded again: CTCAE
    Proteinuria, "24-hour urine collection takes precedence over dipstick")."""
    by_day: dict[DayKey, list[Finding]] = defaultdict(list)
    for f in findings:
        day = f.collected_at.as_date()
        if f.test_code in SAME_DAY_NUMERIC_TESTS and day is not None:
            by_day[(test_key(f), day)].append(f)
    if not by_day:
        return by_day, []
    new_numeric = {k for k, fs in by_day.items() if any(f.value is not None for f in fs)}
    wanted = set(by_day)
    days = [day for _, day in wanted]
    # One read for the batch: these tests' stored results between its first and last day, kept when on a day wanted.
    window = {"collected_from": min(days).isoformat(), "collected_before": (max(days) + timedelta(days=1)).isoformat()}
    stale: list[StoredFinding] = []
    for stored in await uow.findings.history({key for key, _ in wanted}, **window):
        f = stored.finding
        day = f.collected_at.as_date()
        if f.envelope.msg_id in batch_ids or day is None or (test_key(f), day) not in wanted:
            continue
        by_day[(test_key(f), day)].append(f)
        if _is_character(f) and (test_key(f), day) in new_numeric:
            stale.append(stored)
    return by_day, stale


def _same_day_numeric(finding: Finding, by_day: Mapping[DayKey, list[Finding]]) -> Finding | None:
    """The same-day numeric result that may take precedence over a character one: same specimen first."""
    day = finding.collected_at.as_date()
    if day is None:
        return None
    numeric = [f for f in by_day.get((test_key(finding), day), ()) if f.value is not None]
    numeric.sort(key=lambda f: (f.specimen or "") != (finding.specimen or ""))
    return numeric[0] if numeric else None


def _first_dose(subject: Subject | None) -> date | None:
    if subject is None or subject.first_dose_on is None:
        return None
    return subject.first_dose_on.as_date()


async def grade_findings(
    uow: UnitOfWork,
    findings: Sequence[Finding],
    dose_changed: Iterable[SubjectKey],
    grader: FindingGrader,
) -> GradedFindings:
    """Grade the batch's findings and re-grade stored ones whose baseline or companion changed."""
    dose_changed = set(dose_changed)
    batch_keys = {test_key(f) for f in findings}
    subject_keys = {(k[0], k[1]) for k in batch_keys} | dose_changed
    subjects = await uow.subjects.get(subject_keys)
    current = await uow.findings.baselines(batch_keys)

    # Subjects whose first dose moved: their "last value before first dose" may be another record now.
    history: dict[TestKey, list[Finding]] = defaultdict(list)
    stored_by_id: dict[str, StoredFinding] = {}
    if dose_changed:
        for stored in await uow.findings.for_subjects(dose_changed):
            history[test_key(stored.finding)].append(stored.finding)
            stored_by_id[stored.finding.envelope.msg_id] = stored
        current.update(await uow.findings.baselines(history.keys() - current.keys()))

    by_key: dict[TestKey, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_key[test_key(finding)].append(finding)
    baselines: dict[TestKey, Finding] = dict(current)
    changed: set[TestKey] = set()
    for key in by_key.keys() | history.keys():
        first_dose = _first_dose(subjects.get((key[0], key[1])))
        fresh = [f for f in by_key.get(key, ()) if may_be_baseline(f, first_dose)]
        if key not in history and not fresh:
            continue  # results after the first dose, unflagged: none can be the baseline (the usual case)
        candidates = [*history.get(key, ()), *fresh]
        if key in current and key not in history:
            candidates.append(current[key])  # folding into the current choice equals choosing from all history
        chosen = choose_baseline(candidates, first_dose)
        before = current.get(key)
        if chosen is not None and (before is None or chosen.envelope.msg_id != before.envelope.msg_id):
            baselines[key] = chosen
            changed.add(key)
    await uow.findings.set_baselines([baselines[k] for k in sorted(changed)])

    # Same-draw companions: from the batch first, else from the store. Only tests that give or take context are
    # ever looked up here.
    in_batch: dict[DrawKey, Finding] = {
        _draw_key(f, f.test_code): f for f in findings if f.test_code in _SAME_DRAW_TESTS
    }
    wanted = {
        _draw_key(f, companion)
        for f in findings
        for companion in SAME_DRAW_CONTEXT.get(f.test_code, ())
        if _draw_key(f, companion) not in in_batch
    }
    companions = dict(in_batch)
    if wanted:
        companions.update({k: s.finding for k, s in (await uow.findings.same_draw(wanted)).items()})

    batch_ids = {f.envelope.msg_id for f in findings}
    same_day, same_day_stale = await _same_day(uow, findings, batch_ids)

    def context(finding: Finding) -> dict[str, Finding]:
        found = {}
        for companion in SAME_DRAW_CONTEXT.get(finding.test_code, ()):
            hit = companions.get(_draw_key(finding, companion))
            if hit is not None:
                found[companion] = hit
        if finding.test_code in SAME_DAY_NUMERIC_TESTS and _is_character(finding):
            numeric = _same_day_numeric(finding, same_day)
            if numeric is not None:
                found[SAME_DAY_NUMERIC] = numeric
        return found

    uses_baseline: dict[str, bool] = {}

    def grade(finding: Finding) -> StoredFinding:
        test = finding.test_code
        if test not in uses_baseline:
            uses_baseline[test] = grader.uses_baseline(test)
        baseline = baselines.get(test_key(finding)) if uses_baseline[test] else None
        grades = grader.grade(finding, baseline, context(finding))
        return StoredFinding(finding, grades, baseline.envelope.msg_id if baseline else None)

    new = [grade(f) for f in findings]

    # Stored results to grade again: those of tests whose baseline changed, and those whose companion arrived.
    stale: dict[str, StoredFinding] = {}
    changed = {key for key in changed if grader.uses_baseline(key[3])}  # others do not depend on it
    keys_to_load = changed - history.keys()
    if keys_to_load:
        for stored in await uow.findings.history(keys_to_load):
            stored_by_id[stored.finding.envelope.msg_id] = stored
    for stored in stored_by_id.values():
        key = test_key(stored.finding)
        if key in changed and stored.finding.envelope.msg_id not in batch_ids:
            stale[stored.finding.envelope.msg_id] = stored
    dependents = {
        _draw_key(f, dependent)
        for f in findings
        for dependent in _DEPENDENTS.get(f.test_code, ())
        if _draw_key(f, dependent) not in in_batch
    }
    if dependents:
        for stored in (await uow.findings.same_draw(dependents)).values():
            stale.setdefault(stored.finding.envelope.msg_id, stored)
    for stored in same_day_stale:
        stale.setdefault(stored.finding.envelope.msg_id, stored)
    # What the stale results need to be graded again: their baselines and their own companions.
    missing_baselines = {test_key(s.finding) for s in stale.values()} - baselines.keys()
    if missing_baselines:
        baselines.update(await uow.findings.baselines(missing_baselines))
    needed = {
        _draw_key(s.finding, companion)
        for s in stale.values()
        for companion in SAME_DRAW_CONTEXT.get(s.finding.test_code, ())
    } - companions.keys()
    if needed:
        companions.update({k: s.finding for k, s in (await uow.findings.same_draw(needed)).items()})
    regraded = []
    for stored in stale.values():
        again = grade(stored.finding)
        if again.grades != stored.grades or again.baseline_msg_id != stored.baseline_msg_id:
            regraded.append(again)
    return GradedFindings(new, regraded, baselines)
