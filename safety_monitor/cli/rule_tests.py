"""Owns `safety-monitor rules test`: YAML test cases (wire messages in -> expected hits, alerts, routed emails
out), run through the service layer on the in-memory store, like `promtool test rules` and `amtool config routes
test` together.

A test file (`DIR/tests/*.yaml`):

```yaml
tests:
  - name: grade 2 haemoptysis reaches the DSMB after 1 min, the medical monitors after 2 min
    rules: [hemoptysis, hemoptysis-grade-3]        # optional: compare only these rules' outcomes
    now: "2026-05-01T08:00:00+00:00"               # optional: when `input` / untimed batches are processed
    input:                                         # one batch at `now`; or `batches:` (below)
      - {msg_type: AE, USUBJID: S-1, AESPID: AE-1, AEDECOD: Haemoptysis, AETOXGR: 2}
    deliver_at: [+1m, +2m]                         # optional: run reminders + delivery at these times
    expect:
      alerts: [{rule: hemoptysis, subject: S-1, grade: 2}]
      hits: [{rule: hemoptysis, subject: S-1, grade: 2}]            # optional
      notifications: [{rule: hemoptysis, kind: raised, grade: 2}]   # optional: alert changes, before routing
      emails:                                                       # optional: needs deliver_at
        - {receiver: dsmb, at: +1m, alerts: [{rule: hemoptysis, subject: S-1, change: raised}]}
        - {receiver: medical-monitors, at: +2m, subject_contains: "[CRITICAL]",
           alerts: [{rule: hemoptysis, change: raised}]}
      held: []                                                      # optional: needs deliver_at
```

Steps and time. `batches: [[...], {at: +3h, input: [...]}]` gives several batches, each a list of messages
(processed at `now`) or a mapping with its own `at`. `deadline_checks: [times]` runs the expedited-reporting
deadline job, `deliver_at: [times]` the notification jobs a running service runs (reminders for alerts still open
after `repeat_interval`, then delivery: due groups emailed, silences and inhibit rules honoured, the real
templates rendered into an in-memory mailbox). Every step runs in time order (at one time: batches, then deadline
checks, then delivery). A time is an ISO 8601 date-time with a UTC offset, or `+30s`, `+2m`, `+3h`, `+1d`,
`+1h30m` after `now` (default 2026-05-01T08:00:00+00:00). A message's `sent_at` is its batch's time unless given.

Routing. With DIR/routing.yaml, alerts are routed as configured (receivers, route tree, group_by, group_wait,
group_interval, repeat_interval, inhibit rules, silences); without it every alert goes at once to one receiver
named `default`. `silences:` in a case adds silences for that case, written as in routing.yaml (`id`, `matchers`,
`author`, `reason`, `starts_at`, `ends_at`; times may be relative as above). Digests are not run here.

Expectations. Each expected item names only the fields it checks; within the compared rules the expected list
must match the actual one exactly (nothing missing, nothing unexpected), in any order. `alerts` is always compared
(leave it out to expect none).
- alerts: rule, subject, grade, status (open, basis_removed), term, detail_contains.
- hits: rule, subject, grade, term, detail_contains.
- notifications: rule, subject, kind, grade: each alert change, whoever hears it.
- emails: each email sent at a `deliver_at` step: receiver (a routing.yaml receiver), to (its addresses), at
  (when sent), subject_contains and text_contains (the rendered subject line and text), alerts (the alerts it
  carries, exactly: rule, subject, change, grade, term). An email carrying several alerts is one group.
- held: notifications not sent at the end because a silence or an inhibit rule holds them: receiver, rule,
  subject, change, grade, reason_contains (e.g. "silenced by", "inhibited by death-holds-minor-alerts").
Change kinds: raised, escalated (a rise in grade; sent at once, whatever the waits), basis_removed (an update: a
correction removed the alert's basis), reinstated, reminder (the expedited-report deadline is near), repeat (still
open after repeat_interval).

Messages get the envelope filled in (msg_id, sent_at, site_id, record_version, STUDYID) and, for AEs, AETERM and
AEBODSYS, unless the case gives them. Every problem in the test files (unknown keys, wrong fields, unknown rules
or receivers, bad times) is reported with file and line before anything runs.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.adapters.mail import MemoryMailer
from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.adapters.templates import TemplateRenderer
from safety_monitor.domain.alerts import AlertStatus, ChangeKind
from safety_monitor.domain.grading import BloodPressureGrader, CombinedGrader
from safety_monitor.domain.lab_grader import CtcaeGrader
from safety_monitor.domain.notifications import REPEAT
from safety_monitor.domain.routing import Routing, Silence, fallback_routing, group_due_at
from safety_monitor.domain.rules import Ruleset
from safety_monitor.ruleset.errors import ConfigError, ConfigInvalid
from safety_monitor.ruleset.located_yaml import DuplicateKey, KeyPath, Located, format_path, load_located
from safety_monitor.ruleset.routing_loader import ROUTING_FILE, load_routing, parse_duration, parse_silences
from safety_monitor.service.deadlines import check_deadlines
from safety_monitor.service.delivery import message_id
from safety_monitor.service.notifications import ALERTS_MAIL
from safety_monitor.service.pipeline import PipelineConfig, process_batch
from safety_monitor.service.routing_jobs import repeat_job, routed_delivery_job
from streams.decoding import decode
from streams.embedded import to_service

DEFAULT_NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
RECIPIENTS = ("rules-test@example.org",)  # the `default` receiver when DIR has no routing.yaml
SENDER = "safety-monitor@example.org"
MAIL_DOMAIN = "rules-test.example.org"

CASE_KEYS = {"name", "rules", "now", "input", "batches", "deadline_checks", "deliver_at", "silences", "expect"}
BATCH_KEYS = {"at", "input"}
EMAIL_ALERT_FIELDS = {"rule", "subject", "change", "grade", "term"}
EXPECT_FIELDS = {
    "alerts": {"rule", "subject", "grade", "status", "term", "detail_contains"},
    "hits": {"rule", "subject", "grade", "term", "detail_contains"},
    "notifications": {"rule", "subject", "kind", "grade"},
    "emails": {"receiver", "to", "at", "subject_contains", "text_contains", "alerts"},
    "held": {"receiver", "rule", "subject", "change", "grade", "reason_contains"},
}
SINGULAR = {"alerts": "alert", "hits": "hit", "notifications": "notification", "emails": "email", "held": "held"}
CHANGE_KINDS = {*(k.value for k in ChangeKind), REPEAT}
STATUSES = {s.value for s in AlertStatus}

# Step order at one instant: what arrives is processed before the jobs that look at it.
BATCH, DEADLINE_CHECK, DELIVERY = 0, 1, 2


class CaseFileError(ConfigInvalid):
    """Test files that cannot be run: every problem, each naming the file and line."""


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class Batch:
    at: datetime
    messages: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Expected:
    """One expected item: its fields (times parsed) and its line in the test file."""

    line: int
    fields: dict[str, Any]


@dataclass
class Case:
    file: str
    line: int
    name: str
    now: datetime
    scope: frozenset[str] | None  # compare only these rules' outcomes; None: all
    batches: list[Batch]
    deadline_checks: list[datetime]
    deliver_at: list[datetime]
    silences: tuple[Silence, ...]
    expect: dict[str, list[Expected]]


def default_grader() -> CombinedGrader:
    criteria = load_criteria("5.0")
    return CombinedGrader(BloodPressureGrader(criteria.ctcae_version), CtcaeGrader(criteria))


# --- reading and checking the test files -----------------------------------------------------------------------


def _hint(value: str, allowed: Iterable[str]) -> str:
    choices = sorted(allowed)
    close = difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(choices) or 'none'}"


class _Reader:
    """Checks one test file, collecting every problem with its line and key path."""

    def __init__(self, file: str, doc: Located, rule_ids: set[str], receivers: set[str]) -> None:
        self.file = file
        self.doc = doc
        self.rule_ids = rule_ids
        self.receivers = receivers
        self.errors: list[ConfigError] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(ConfigError(self.file, self.doc.line(path), format_path(path), message))

    def line(self, path: KeyPath) -> int:
        return self.doc.line(path) or 0

    def keys(self, raw: dict[str, Any], path: KeyPath, allowed: set[str], what: str) -> bool:
        ok = True
        for key in raw:
            if key not in allowed:
                self.error((*path, key), f"{key!r} is not a field of {what}{_hint(str(key), allowed)}")
                ok = False
        return ok

    def time(self, value: Any, path: KeyPath, now: datetime) -> datetime | None:
        """An ISO 8601 date-time with a UTC offset, or `+<duration>` after `now`."""
        if isinstance(value, str) and value.startswith("+"):
            offset = parse_duration(value[1:])
            if offset is None:
                self.error(path, f"{value!r} is not a time after now: write e.g. +30s, +2m, +3h, +1d or +1h30m")
            return now + offset if offset is not None else None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.error(path, f"{value!r} is not a time: write 2026-05-01T08:02:00+00:00 or +2m (after now)")
                return None
        if isinstance(value, date) and not isinstance(value, datetime):
            self.error(path, f"{value} is a date: give a date-time with a UTC offset, or +2m (after now)")
            return None
        if not isinstance(value, datetime):
            self.error(path, f"{value!r} is not a time: write 2026-05-01T08:02:00+00:00 or +2m (after now)")
            return None
        if value.tzinfo is None:
            self.error(path, f"{value.isoformat()} has no UTC offset: add one (e.g. +00:00 or +08:00)")
            return None
        return value.astimezone(UTC)

    def times(self, raw: dict[str, Any], key: str, path: KeyPath, now: datetime) -> list[datetime]:
        if key not in raw:
            return []
        value = raw[key]
        if not isinstance(value, list):
            self.error((*path, key), f"{key} is a list of times, e.g. [+2m, 2026-05-03T09:00:00+00:00]")
            return []
        found = [self.time(v, (*path, key, i), now) for i, v in enumerate(value)]
        return [t for t in found if t is not None]

    def messages(self, value: Any, path: KeyPath) -> tuple[dict[str, Any], ...]:
        if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
            self.error(path, "a batch is a list of messages, each a mapping such as {msg_type: AE, USUBJID: ...}")
            return ()
        for index, message in enumerate(value):
            if "msg_type" not in message:
                self.error((*path, index), "a message needs msg_type (AE, LB, VS, EG or SUBJECT)")
        return tuple(value)

    def batches(self, raw: dict[str, Any], path: KeyPath, now: datetime) -> list[Batch]:
        if "input" in raw and "batches" in raw:
            self.error((*path, "batches"), "give input (one batch) or batches, not both")
            return []
        if "batches" not in raw:
            return [Batch(now, self.messages(raw.get("input", []), (*path, "input")))]
        if not isinstance(raw["batches"], list):
            self.error((*path, "batches"), "batches is a list of batches: each a list of messages or {at, input}")
            return []
        found = []
        for index, item in enumerate(raw["batches"]):
            where: KeyPath = (*path, "batches", index)
            if isinstance(item, dict):
                self.keys(item, where, BATCH_KEYS, "a batch")
                if "input" not in item:
                    self.error(where, "a timed batch needs input (its messages)")
                at = self.time(item["at"], (*where, "at"), now) if "at" in item else now
                found.append(Batch(at or now, self.messages(item.get("input", []), (*where, "input"))))
            else:
                found.append(Batch(now, self.messages(item, where)))
        return found

    def silences(self, raw: dict[str, Any], path: KeyPath, now: datetime) -> tuple[Silence, ...]:
        if "silences" not in raw:
            return ()
        value = raw["silences"]
        if not isinstance(value, list):
            self.error((*path, "silences"), "silences is a list, written as in routing.yaml")
            return ()
        items = []
        for index, spec in enumerate(value):
            if isinstance(spec, dict):  # relative times, then the routing file's own checks
                spec = dict(spec)
                for key in ("starts_at", "ends_at"):
                    if isinstance(spec.get(key), str) and spec[key].startswith("+"):
                        at = self.time(spec[key], (*path, "silences", index, key), now)
                        spec[key] = at.isoformat() if at else spec[key]
            items.append(spec)
        prefix = (*path, "silences")
        lines = {("silences", *p[len(prefix) :]): n for p, n in self.doc.lines.items() if p[: len(prefix)] == prefix}
        errors: list[ConfigError] = []
        parsed = parse_silences(self.file, Located({"silences": items}, lines), errors)
        for error in errors:
            key_path = format_path(path) + "." + error.key_path if error.key_path else format_path(prefix)
            self.errors.append(replace(error, key_path=key_path))
        return tuple(parsed)

    def rule(self, value: Any, path: KeyPath) -> None:
        if not isinstance(value, str) or (self.rule_ids and value not in self.rule_ids):
            self.error(path, f"{value!r} is not a rule of this ruleset{_hint(str(value), self.rule_ids)}")

    def value(self, key: str, value: Any, path: KeyPath, now: datetime) -> Any:
        """The field's value as compared (times parsed); records a problem for a wrong one."""
        if key == "rule":
            self.rule(value, path)
        elif key == "grade" and (isinstance(value, bool) or value not in (1, 2, 3, 4, 5)):
            self.error(path, f"grade {value!r} is impossible: CTCAE grades run 1-5")
        elif key in ("kind", "change") and value not in CHANGE_KINDS:
            self.error(path, f"{key} {value!r} is not a change kind{_hint(str(value), CHANGE_KINDS)}")
        elif key == "status" and value not in STATUSES:
            self.error(path, f"status {value!r} is not an alert status{_hint(str(value), STATUSES)}")
        elif key == "receiver" and value not in self.receivers:
            self.error(path, f"{value!r} is not a receiver of the routing{_hint(str(value), self.receivers)}")
        elif key == "to" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            self.error(path, f"to is a list of email addresses, got {value!r}")
        elif key == "at":
            return self.time(value, path, now)
        elif (key in ("subject", "term") or key.endswith("_contains")) and (
            isinstance(value, bool) or not isinstance(value, str | int | float)
        ):
            self.error(path, f"{key} is text, got {value!r}")
        return value

    def item(self, raw: Any, path: KeyPath, allowed: set[str], what: str, now: datetime) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.error(path, f"each expected {what} is a mapping naming some of {', '.join(sorted(allowed))}")
            return None
        self.keys(raw, path, allowed, f"an expected {what}")
        fields: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "alerts" and what == "email":
                fields[key] = self.email_alerts(value, (*path, key), now)
            elif key in allowed:
                fields[key] = self.value(key, value, (*path, key), now)
        return fields

    def email_alerts(self, value: Any, path: KeyPath, now: datetime) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            self.error(path, "alerts of an email is a list, e.g. [{rule: hemoptysis, change: raised}]")
            return []
        found = [self.item(v, (*path, i), EMAIL_ALERT_FIELDS, "alert of an email", now) for i, v in enumerate(value)]
        return [f for f in found if f is not None]

    def expect(self, raw: dict[str, Any], path: KeyPath, now: datetime, delivers: bool) -> dict[str, list[Expected]]:
        value = raw.get("expect", {})
        where: KeyPath = (*path, "expect")
        if not isinstance(value, dict):
            self.error(where, f"expect is a mapping of some of {', '.join(EXPECT_FIELDS)}")
            return {}
        self.keys(value, where, set(EXPECT_FIELDS), "expect")
        expect: dict[str, list[Expected]] = {}
        for key, allowed in EXPECT_FIELDS.items():
            if key not in value:
                continue
            if key in ("emails", "held") and not delivers:
                what = "emails are sent" if key == "emails" else "held notifications are decided"
                self.error((*where, key), f"{what} at delivery steps: add deliver_at: [times] to the case")
            items = value[key]
            if not isinstance(items, list):
                self.error((*where, key), f"{key} is a list (write [] to expect none)")
                continue
            expect[key] = []
            for index, item in enumerate(items):
                fields = self.item(item, (*where, key, index), allowed, SINGULAR[key], now)
                if fields is not None:
                    expect[key].append(Expected(self.line((*where, key, index)), fields))
        return expect

    def case(self, raw: Any, path: KeyPath) -> Case | None:
        if not isinstance(raw, dict):
            self.error(path, "a test case is a mapping with a name, input or batches, and expect")
            return None
        self.keys(raw, path, CASE_KEYS, "a test case")
        if not isinstance(raw.get("name"), str):
            self.error(path, "a test case needs a name (text)")
            return None
        now = self.time(raw["now"], (*path, "now"), DEFAULT_NOW) if "now" in raw else DEFAULT_NOW
        now = now or DEFAULT_NOW
        scope = None
        if "rules" in raw:
            if not isinstance(raw["rules"], list):
                self.error((*path, "rules"), "rules is a list of rule ids")
            else:
                for index, rule_id in enumerate(raw["rules"]):
                    self.rule(rule_id, (*path, "rules", index))
                scope = frozenset(str(r) for r in raw["rules"])
        return Case(
            file=self.file,
            line=self.line(path),
            name=raw["name"],
            now=now,
            scope=scope,
            batches=self.batches(raw, path, now),
            deadline_checks=self.times(raw, "deadline_checks", path, now),
            deliver_at=self.times(raw, "deliver_at", path, now),
            silences=self.silences(raw, path, now),
            expect=self.expect(raw, path, now, "deliver_at" in raw),
        )


def read_cases(
    path: Path, rule_ids: Iterable[str] = (), receivers: Iterable[str] = ()
) -> tuple[list[Case], list[ConfigError]]:
    """The cases of one test file and every problem found in it (rule ids and receivers checked when given)."""
    file = str(path)
    try:
        doc = load_located(path.read_text(encoding="utf-8"))
    except DuplicateKey as exc:
        return [], [ConfigError(file, exc.line, "", str(exc))]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        return [], [ConfigError(file, mark.line + 1 if mark else None, "", f"not valid YAML: {problem}")]
    reader = _Reader(file, doc, set(rule_ids), set(receivers))
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("tests"), list):
        reader.error((), "a test file is a mapping with a 'tests' list")
        return [], reader.errors
    reader.keys(doc.data, (), {"tests"}, "a test file")
    found = [reader.case(raw, ("tests", index)) for index, raw in enumerate(doc.data["tests"])]
    return [c for c in found if c is not None], reader.errors


def load_cases(path: Path, rule_ids: Iterable[str] = (), receivers: Iterable[str] = ()) -> list[Case]:
    """The cases of one test file; CaseFileError with every problem, each naming the file and line."""
    cases, errors = read_cases(path, rule_ids, receivers)
    if errors:
        raise CaseFileError(errors)
    return cases


def case_files(directory: Path) -> list[Path]:
    """The test files of a rules directory: DIR/tests/*.yaml (or DIR itself when it holds only tests)."""
    tests = directory / "tests"
    where = tests if tests.is_dir() else directory
    return sorted([*where.glob("*.yaml"), *where.glob("*.yml")])


def case_routing(directory: Path, templates_dir: Path) -> Routing | None:
    """DIR/routing.yaml, checked as `rules check` does (ConfigInvalid with every error); None when absent."""
    path = directory / ROUTING_FILE
    # Without the environment: a case's expected addresses are the file's own defaults wherever it runs.
    return load_routing(path, templates_dir, environ={}) if path.is_file() else None


# --- running a case --------------------------------------------------------------------------------------------


def _fill(message: dict[str, Any], msg_id: str, sent_at: datetime) -> dict[str, Any]:
    """The wire message with the envelope (and an AE's free-text fields) filled in where the case left them out."""
    filled = {
        "msg_id": msg_id,
        "sent_at": sent_at.isoformat(),
        "site_id": "000",
        "record_version": 1,
        "STUDYID": "ALTER-ICI-01",
    }
    if message.get("msg_type") == "AE":
        filled |= {"AETERM": str(message.get("AEDECOD", "")).lower(), "AEBODSYS": "Not given"}
    return filled | message


def _shown(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_shown(value), sort_keys=True, default=str)


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, want in expected.items():
        if key.endswith("_contains"):
            if str(want) not in str(actual.get(key.removesuffix("_contains"), "")):
                return False
        elif key == "alerts":  # the alerts one email carries: exactly these
            missing, unexpected = _pair(list(want), actual["alerts"])
            if missing or unexpected:
                return False
        elif key == "to":
            if sorted(want) != sorted(actual["to"]):
                return False
        elif actual.get(key) != want:
            return False
    return True


def _pair(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]]]:
    """(indexes of expected items left unmatched, actual items left over), matching each to a distinct item."""
    remaining = list(actual)
    missing = []
    for index, item in enumerate(expected):
        found = next((a for a in remaining if _matches(item, a)), None)
        if found is None:
            missing.append(index)
        else:
            remaining.remove(found)
    return missing, remaining


def _compare(
    what: str,
    expected: list[Expected],
    actual: list[dict[str, Any]],
    shown: Callable[[dict[str, Any]], dict[str, Any]] = lambda item: item,
) -> list[str]:
    """Exact matching of expected items (each naming the fields it checks) to distinct actual items."""
    missing, unexpected = _pair([e.fields for e in expected], actual)
    problems = [f"  missing {what}: {_json(expected[i].fields)} (expected at line {expected[i].line})" for i in missing]
    problems += [f"  unexpected {what}: {_json(shown(item))}" for item in unexpected]
    return problems


@dataclass
class Harness:
    """What every case shares: the ruleset, grader, routing file and templates."""

    ruleset: Ruleset
    grader: CombinedGrader
    routing: Routing | None
    renderer: TemplateRenderer

    def routing_for(self, case: Case) -> Routing:
        routing = self.routing if self.routing is not None else fallback_routing(RECIPIENTS)
        return replace(routing, silences=routing.silences + case.silences) if case.silences else routing


@dataclass
class _Outcome:
    """What a case produced, as dicts named like the expectations."""

    alerts: list[dict[str, Any]]
    hits: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    held: list[dict[str, Any]]
    waiting: list[dict[str, Any]]  # pending, not held: their group was not due at the last delivery step


async def _run_steps(harness: Harness, case: Case, origin: str, store: MemoryStore, mailer: MemoryMailer) -> list[str]:
    """Run the case's batches, deadline checks and deliveries in time order; problems if input was refused or
    an email could not be rendered."""
    routing = harness.routing_for(case)
    config = PipelineConfig(harness.ruleset, harness.grader, RECIPIENTS, routing)
    reminders = repeat_job(store)
    delivery = routed_delivery_job(store, mailer, harness.renderer, routing, sender=SENDER, mail_domain=MAIL_DOMAIN)
    steps: list[tuple[datetime, int, int, Batch | None]] = [
        *((b.at, BATCH, i, b) for i, b in enumerate(case.batches)),
        *((at, DEADLINE_CHECK, i, None) for i, at in enumerate(case.deadline_checks)),
        *((at, DELIVERY, i, None) for i, at in enumerate(case.deliver_at)),
    ]
    counter = 0
    for at, kind, _, batch in sorted(steps, key=lambda s: s[:3]):
        if kind == DEADLINE_CHECK:
            await check_deadlines(store, config, at)
        elif kind == DELIVERY:
            await reminders.run(at)
            try:
                await delivery.run(at)
            except Exception as exc:  # a template that cannot render this alert: the case fails, saying so
                return [f"  delivery at {at.isoformat()} failed: {type(exc).__name__}: {exc}"]
        elif batch is not None:
            items = []
            for message in batch.messages:
                counter += 1
                payload = json.dumps(_fill(message, f"{origin}-{counter}", at))
                items.append(to_service(decode(payload, f"{origin}#{counter}", now=at)))
            async with store() as uow:
                outcome = await process_batch(uow, items, config, at)
                await uow.commit()
            if outcome.dead_letter_reasons:
                return [f"  input refused: {reason}" for reason in outcome.dead_letter_reasons]
    return []


def _outcome(store: MemoryStore, mailer: MemoryMailer, scope: frozenset[str] | None) -> _Outcome:
    state = store.state

    def in_scope(rule_id: str) -> bool:
        return scope is None or rule_id in scope

    alerts = [
        {"rule": a.rule_id, "subject": a.subject_id, "grade": a.grade, "status": a.status.value}
        | {"term": a.term, "detail": a.detail}
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
    by_message_id = {message_id(n.notice_id, MAIL_DOMAIN): n for n in state.outbox.values()}
    emails = []
    for mail in mailer.sent:
        notice = by_message_id[mail.message_id]
        items = notice.context.get("notifications", []) if notice.kind == ALERTS_MAIL else [notice.context]
        carried = [
            {"rule": n["rule_id"], "subject": n["subject_id"], "change": n["change"], "grade": n["grade"]}
            | {"term": n["term"]}
            for n in items
            if in_scope(str(n["rule_id"]))
        ]
        if carried:
            emails.append(
                {"receiver": notice.context.get("receiver"), "to": list(mail.recipients), "at": notice.sent_at}
                | {"subject": mail.subject, "text": mail.text, "alerts": carried}
            )
    held, waiting = [], []
    pending = [n for n in state.notifications.values() if n.state == "pending" and in_scope(n.context["rule_id"])]
    for n in sorted(pending, key=lambda n: (n.created_at, n.receiver, n.alert_key)):
        item = {"receiver": n.receiver, "rule": n.context["rule_id"], "subject": n.context["subject_id"]}
        item |= {"change": n.kind, "grade": n.context["grade"]}
        if n.held_by is not None:
            held.append(item | {"reason": n.held_by})
        else:
            group = state.notification_groups[n.group_id]
            in_group = [p for p in state.notifications.values() if p.state == "pending" and p.group_id == n.group_id]
            due = group_due_at(
                earliest_pending=min(p.created_at for p in in_group),
                last_flush_at=group.last_flush_at,
                timing=group.timing,
                urgent=any(p.urgent for p in in_group),
            )
            waiting.append(item | {"due": due})
    return _Outcome(alerts, hits, changes, emails, held, waiting)


def _email_shown(email: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in email.items() if k != "text"}  # the body is long; the subject line tells which


async def run_case(harness: Harness, case: Case, origin: str) -> list[str]:
    """The problems of one case (empty when it passes)."""
    store, mailer = MemoryStore(), MemoryMailer()
    refused = await _run_steps(harness, case, origin, store, mailer)
    if refused:
        return refused
    outcome = _outcome(store, mailer, case.scope)
    expect = case.expect
    problems = _compare("alert", expect.get("alerts", []), outcome.alerts)
    if "hits" in expect:
        problems += _compare("hit", expect["hits"], outcome.hits)
    if "notifications" in expect:
        problems += _compare("notification", expect["notifications"], outcome.notifications)
    if "emails" in expect:
        email_problems = _compare("email", expect["emails"], outcome.emails, _email_shown)
        problems += email_problems
        if email_problems:
            last = max(case.deliver_at).isoformat()
            problems += [f"  not emailed by the last deliver_at ({last}): {_json(w)}" for w in outcome.waiting]
    if "held" in expect:
        problems += _compare("held notification", expect["held"], outcome.held)
    return problems


async def run_files(
    ruleset: Ruleset, files: Sequence[Path], *, templates_dir: Path, routing: Routing | None = None
) -> list[CaseResult]:
    """Check every test file (CaseFileError with every problem, before anything runs), then run each case."""
    receivers = routing.receivers if routing is not None else fallback_routing(RECIPIENTS).receivers
    errors: list[ConfigError] = []
    loaded: list[Case] = []
    for path in files:
        cases, problems = read_cases(path, (r.id for r in ruleset.rules), receivers)
        loaded += cases
        errors += problems
    if errors:
        raise CaseFileError(errors)
    harness = Harness(ruleset, default_grader(), routing, TemplateRenderer(templates_dir))
    results = []
    for case in loaded:
        origin = f"{Path(case.file).stem}:{case.line}"
        results.append(CaseResult(case.file, case.line, case.name, await run_case(harness, case, origin)))
    return results
