"""Owns `safety-monitor rules test`: YAML test cases (wire messages in -> expected hits, alerts, notifications out),
run against the in-memory store, like `promtool test rules`.

A test file (`rules/tests/*.yaml`):

```yaml
tests:
  - name: grade 2 haemoptysis raises the alert, not the grade-3 one
    rules: [hemoptysis, hemoptysis-grade-3]       # optional: compare only these rules' outcomes
    input:                                        # one batch; or `batches: [[...], [...]]`
      - {msg_type: AE, USUBJID: S-1, AESPID: AE-1, AEDECOD: Haemoptysis, AETOXGR: 2}
    deadline_checks: ["2026-05-20T00:00:00+00:00"]  # optional: run the deadline job at these times
    expect:
      alerts: [{rule: hemoptysis, subject: S-1, grade: 2}]
      hits: [{rule: hemoptysis, subject: S-1, grade: 2}]          # optional
      notifications: [{rule: hemoptysis, kind: raised, grade: 2}] # optional: alert changes
```

Messages get the envelope filled in (msg_id, sent_at, site_id, record_version, STUDYID) and, for AEs, AETERM and
AEBODSYS, unless the case gives them. Expected items name only the fields they check; within the compared rules
the expected list must match the actual one exactly (nothing missing, nothing unexpected).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.adapters.memory import MemoryStore
from safety_monitor.domain.ctcae import CtcaeGrader
from safety_monitor.domain.grading import BloodPressureGrader, CombinedGrader
from safety_monitor.domain.rules import Ruleset
from safety_monitor.ruleset.located_yaml import load_located
from safety_monitor.service.deadlines import check_deadlines
from safety_monitor.service.pipeline import PipelineConfig, process_batch
from streams.embedded import to_service
from streams.wire import decode

DEFAULT_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEFAULT_SENT_AT = "2026-05-01T08:00:00+00:00"
CASE_KEYS = {"name", "rules", "input", "batches", "deadline_checks", "expect", "now"}
EXPECT_KEYS = {"alerts", "hits", "notifications"}
ALERT_FIELDS = {"rule", "subject", "grade", "status", "term", "detail_contains"}
HIT_FIELDS = {"rule", "subject", "grade", "term", "detail_contains"}
NOTIFICATION_FIELDS = {"rule", "subject", "kind", "grade"}
RECIPIENTS = ("rules-test@example.org",)


class CaseFileError(Exception):
    """A test file that cannot be read; the message names the file and line."""


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def default_grader() -> CombinedGrader:
    criteria = load_criteria("5.0")
    return CombinedGrader(BloodPressureGrader(criteria.ctcae_version), CtcaeGrader(criteria))


def _fill(message: dict[str, Any], msg_id: str, sent_at: str) -> dict[str, Any]:
    """The wire message with the envelope (and an AE's free-text fields) filled in where the case left them out."""
    filled = {
        "msg_id": msg_id,
        "sent_at": sent_at,
        "site_id": "000",
        "record_version": 1,
        "STUDYID": "ALTER-ICI-01",
    }
    if message.get("msg_type") == "AE":
        filled |= {"AETERM": str(message.get("AEDECOD", "")).lower(), "AEBODSYS": "Not given"}
    return filled | message


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, want in expected.items():
        if key == "detail_contains":
            if str(want) not in str(actual.get("detail", "")):
                return False
        elif actual.get(key) != want:
            return False
    return True


def _compare(what: str, expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Exact matching of expected items (each naming the fields it checks) to distinct actual items."""
    remaining = list(actual)
    problems = []
    for item in expected:
        found = next((a for a in remaining if _matches(item, a)), None)
        if found is None:
            problems.append(f"  missing {what}: {json.dumps(item, sort_keys=True)}")
        else:
            remaining.remove(found)
    for item in remaining:
        problems.append(f"  unexpected {what}: {json.dumps(item, sort_keys=True, default=str)}")
    return problems


async def run_case(ruleset: Ruleset, case: dict[str, Any], origin: str, grader: CombinedGrader) -> list[str]:
    """The problems of one case (empty when it passes)."""
    store = MemoryStore()
    config = PipelineConfig(ruleset, grader, RECIPIENTS)
    now = datetime.fromisoformat(case["now"]) if "now" in case else DEFAULT_NOW
    batches: list[list[dict[str, Any]]] = case["batches"] if "batches" in case else [case.get("input", [])]
    counter = 0
    for batch in batches:
        items = []
        for message in batch:
            counter += 1
            payload = json.dumps(_fill(message, f"{origin}-{counter}", DEFAULT_SENT_AT))
            items.append(to_service(decode(payload, f"{origin}#{counter}")))
        async with store() as uow:
            outcome = await process_batch(uow, items, config, now)
            await uow.commit()
        if outcome.dead_letter_reasons:
            return [f"  input refused: {reason}" for reason in outcome.dead_letter_reasons]
    for at in case.get("deadline_checks", []):
        await check_deadlines(store, config, datetime.fromisoformat(str(at)))
    scope = set(case["rules"]) if "rules" in case else None
    state = store.state

    def in_scope(rule_id: str) -> bool:
        return scope is None or rule_id in scope

    alerts = [
        {
            "rule": a.rule_id,
            "subject": a.subject_id,
            "grade": a.grade,
            "status": a.status.value,
            "term": a.term,
            "detail": a.detail,
        }
        for a in sorted(state.alerts.values(), key=lambda a: a.key)
        if in_scope(a.rule_id)
    ]
    hits = [
        {"rule": h.rule.id, "subject": h.subject_id, "grade": h.grade, "term": h.term, "detail": h.detail}
        for h in sorted(state.hits.values(), key=lambda h: (h.rule.id, h.subject_id, h.msg_id))
        if in_scope(h.rule.id)
    ]
    changes = [
        {"rule": c.alert.rule_id, "subject": c.alert.subject_id, "kind": c.kind.value, "grade": c.alert.grade}
        for c in state.alert_changes
        if in_scope(c.alert.rule_id)
    ]
    expect = case.get("expect", {})
    problems = _compare("alert", expect.get("alerts", []), alerts)
    if "hits" in expect:
        problems += _compare("hit", expect["hits"], hits)
    if "notifications" in expect:
        problems += _compare("notification", expect["notifications"], changes)
    return problems


def _check_case(case: Any, file: str, line: int | None) -> str | None:
    where = f"{file}, line {line}"
    if not isinstance(case, dict) or "name" not in case:
        return f"{where}: a test case is a mapping with a name"
    unknown = sorted(set(case) - CASE_KEYS)
    if unknown:
        return f"{where}: unknown key(s) {unknown}; allowed: {', '.join(sorted(CASE_KEYS))}"
    expect = case.get("expect", {})
    if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
        return f"{where}: expect takes {', '.join(sorted(EXPECT_KEYS))}"
    for key, allowed in (("alerts", ALERT_FIELDS), ("hits", HIT_FIELDS), ("notifications", NOTIFICATION_FIELDS)):
        for item in expect.get(key, []):
            if not isinstance(item, dict) or set(item) - allowed:
                return f"{where}: each expected {key[:-1]} names some of {', '.join(sorted(allowed))}, got {item!r}"
    return None


def load_cases(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line, case) for each case of a test file; CaseFileError names what is wrong and where."""
    try:
        doc = load_located(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError) as exc:
        raise CaseFileError(f"{path}: not a valid test file: {exc}") from None
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("tests"), list):
        raise CaseFileError(f"{path}: a test file is a mapping with a 'tests' list")
    cases = []
    for index, case in enumerate(doc.data["tests"]):
        line = doc.line(("tests", index)) or 0
        problem = _check_case(case, str(path), line)
        if problem:
            raise CaseFileError(problem)
        cases.append((line, case))
    return cases


def case_files(directory: Path) -> list[Path]:
    """The test files of a rules directory: DIR/tests/*.yaml (or DIR itself when it holds only tests)."""
    tests = directory / "tests"
    where = tests if tests.is_dir() else directory
    return sorted([*where.glob("*.yaml"), *where.glob("*.yml")])


async def run_files(ruleset: Ruleset, files: Sequence[Path]) -> list[CaseResult]:
    grader = default_grader()
    results = []
    for path in files:
        for line, case in load_cases(path):
            origin = f"{path.stem}:{line}"
            problems = await run_case(ruleset, case, origin, grader)
            results.append(CaseResult(str(path), line, str(case["name"]), problems))
    return results
