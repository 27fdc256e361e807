"""Owns safety rules and their evaluation against facts, producing rule hits with a stable alert identity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from safety_monitor.domain.conditions.ae import AeCondition
from safety_monitor.domain.conditions.cohort import CohortCondition, CohortStatus
from safety_monitor.domain.conditions.deadline import DeadlineCondition, SaeClock
from safety_monitor.domain.conditions.finding import FindingCondition
from safety_monitor.domain.conditions.pattern import GradedFinding, PatternCondition
from safety_monitor.domain.conditions.subject import SubjectCondition
from safety_monitor.domain.grading import GradeResult
from safety_monitor.domain.messages import AdverseEvent, Finding, MessageType, SubjectEvent

Condition = AeCondition | FindingCondition | PatternCondition | CohortCondition | DeadlineCondition | SubjectCondition


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    INFO = "info"


class Recommendation(StrEnum):
    """The protocol action a rule recommends (the rule's `action.recommend`)."""

    CONTINUE = "continue"
    HOLD = "hold"
    DISCONTINUE = "discontinue"
    DSMB_REVIEW = "dsmb_review"


class AnnotationTemplate(Protocol):
    """A rule annotation (summary, description, ...) rendered from an alert's context.

    Implemented outside the domain (Jinja2, in the ruleset layer); the domain only calls `render`.
    """

    def render(self, context: Mapping[str, object]) -> str: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """One safety rule: what counts as a signal, why, and the protocol action it recommends."""

    id: str
    title: str
    condition: Condition
    severity: Severity
    action: str = ""  # the protocol action in words ("Grade 2: hold anlotinib; ...")
    rationale: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    source: str = ""  # "rules/pulmonary.yaml:4"
    recommendation: Recommendation | None = None
    rationale_source: str = ""  # the clinical source of the rationale (trial, guideline, label)
    annotations: tuple[tuple[str, AnnotationTemplate], ...] = field(default=(), compare=False)

    def render_annotations(self, context: Mapping[str, object]) -> dict[str, str]:
        return {name: template.render(context) for name, template in self.annotations}


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The rules in force, identified by a content hash recorded with every hit and alert."""

    rules: tuple[Rule, ...]
    content_hash: str
    ae_rules: tuple[Rule, ...] = field(init=False)
    finding_rules: tuple[Rule, ...] = field(init=False)
    pattern_rules: tuple[Rule, ...] = field(init=False)
    cohort_rules: tuple[Rule, ...] = field(init=False)
    deadline_rules: tuple[Rule, ...] = field(init=False)
    subject_rules: tuple[Rule, ...] = field(init=False)

    # Which rules can match a message at all, so that a message visits only those (in catalogue order, as the
    # hits would be in over every rule): AE rules by MedDRA PT, lab / vital / ECG and pattern rules by test.
    _ae_by_term: Mapping[str, tuple[Rule, ...]] = field(init=False, repr=False, compare=False)
    _ae_any_term: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    _finding_by_test: Mapping[tuple[MessageType, str], tuple[Rule, ...]] = field(init=False, repr=False, compare=False)
    _pattern_by_test: Mapping[tuple[MessageType, str], tuple[Rule, ...]] = field(init=False, repr=False, compare=False)
    _by_id: Mapping[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def of(kind: type) -> tuple[Rule, ...]:
            return tuple(r for r in self.rules if isinstance(r.condition, kind))

        object.__setattr__(self, "ae_rules", of(AeCondition))
        object.__setattr__(self, "finding_rules", of(FindingCondition))
        object.__setattr__(self, "pattern_rules", of(PatternCondition))
        object.__setattr__(self, "cohort_rules", of(CohortCondition))
        object.__setattr__(self, "deadline_rules", of(DeadlineCondition))
        object.__setattr__(self, "subject_rules", of(SubjectCondition))

        # An AE rule naming PTs only (no verbatim text) can match an AE of those PTs only; the others (verbatim
        # text, SOC alone, any AE) are visited by every AE.
        def term_bound(rule: Rule) -> frozenset[str] | None:
            condition = rule.condition
            assert isinstance(condition, AeCondition)
            return condition.terms if condition.terms and not condition.verbatim_contains else None

        bound = {rule.id: term_bound(rule) for rule in self.ae_rules}
        terms = {term for t in bound.values() if t is not None for term in t}
        by_term = {term: tuple(r for r in self.ae_rules if (b := bound[r.id]) is None or term in b) for term in terms}
        object.__setattr__(self, "_ae_by_term", by_term)
        object.__setattr__(self, "_ae_any_term", tuple(r for r in self.ae_rules if bound[r.id] is None))

        finding_tests: dict[tuple[MessageType, str], list[Rule]] = {}
        for rule in self.finding_rules:
            assert isinstance(rule.condition, FindingCondition)
            for test in rule.condition.tests:
                finding_tests.setdefault((rule.condition.domain, test), []).append(rule)
        object.__setattr__(self, "_finding_by_test", {k: tuple(v) for k, v in finding_tests.items()})

        pattern_tests: dict[tuple[MessageType, str], list[Rule]] = {}
        for rule in self.pattern_rules:
            assert isinstance(rule.condition, PatternCondition)
            for key in sorted(rule.condition.needed_tests()):
                pattern_tests.setdefault(key, []).append(rule)
        object.__setattr__(self, "_pattern_by_test", {k: tuple(v) for k, v in pattern_tests.items()})
        object.__setattr__(self, "_by_id", {r.id: r for r in reversed(self.rules)})  # the first of a duplicate id

    def by_id(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def ae_rules_for(self, event: AdverseEvent) -> tuple[Rule, ...]:
        """The AE rules that can match this AE (the others name other PTs), in catalogue order."""
        return self._ae_by_term.get(event.preferred_term.casefold(), self._ae_any_term)

    def finding_rules_for(self, finding: Finding) -> tuple[Rule, ...]:
        """The lab / vital / ECG rules about this finding's test, in catalogue order."""
        return self._finding_by_test.get((finding.domain, finding.test_code), ())

    def pattern_rules_for(self, finding: Finding) -> tuple[Rule, ...]:
        """The pattern rules that read this finding's test, in catalogue order."""
        return self._pattern_by_test.get((finding.domain, finding.test_code), ())


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule matched a fact. `alert_key` is the identity of the alert it raises or keeps open; rule + study +
    subject + `occurrence` is the identity of the hit."""

    rule: Rule
    alert_key: str
    study_id: str
    subject_id: str
    subject_ref: str  # the AE record ("AE:AE-14"), the finding term ("VS:Hypertension"), "PATTERN", "COHORT"
    term: str
    grade: int
    msg_id: str
    # What the hit is about, unique within rule + subject: the message (its msg_id) for a hit on one message; for a
    # pattern, the collection date/time of the measurement identifying the occurrence (conditions/pattern.py), so
    # the same data in any order or batching give the same hits.
    occurrence: str
    observed_on: str  # onset or collection date as the site sent it
    detail: str
    ruleset_hash: str
    ctcae_version: str


def ae_alert_key(rule_id: str, event: AdverseEvent) -> str:
    # Identity for AE rules: rule + subject + AE record, so follow-ups of the same AE are one alert
    # and a new AE record (a recurrence) is a new alert (docs/architecture.md, "Rules and routing").
    env = event.envelope
    return f"{rule_id}|{env.study_id}|{env.subject_id}|AE:{event.ae_spid}"


def finding_alert_key(rule_id: str, finding: Finding, term: str) -> str:
    env = finding.envelope
    return f"{rule_id}|{env.study_id}|{env.subject_id}|{finding.domain.value}:{term}"


def pattern_alert_key(rule_id: str, study_id: str, subject_id: str) -> str:
    # One alert per rule and subject: later occurrences are repeats (or escalations), whatever the arrival order.
    return f"{rule_id}|{study_id}|{subject_id}|PATTERN"


def cohort_alert_key(rule_id: str, study_id: str) -> str:
    return f"{rule_id}|{study_id}|COHORT"


def _grade_text(event: AdverseEvent) -> str:
    derived = ""
    if event.derived_grade is not None:
        derived = f", value-derived grade {event.derived_grade} ({event.derived_term})"
    return f"grade {event.investigator_grade} (investigator){derived}"


def evaluate_ae(ruleset: Ruleset, event: AdverseEvent, ctcae_version: str) -> list[RuleHit]:
    """Hits of every AE rule on the current version of one AE record."""
    hits = []
    env = event.envelope
    for rule in ruleset.ae_rules_for(event):
        assert isinstance(rule.condition, AeCondition)
        grade = rule.condition.grade(event)
        if grade is None:
            continue
        hits.append(
            RuleHit(
                rule=rule,
                alert_key=ae_alert_key(rule.id, event),
                study_id=env.study_id,
                subject_id=env.subject_id,
                subject_ref=f"AE:{event.ae_spid}",
                term=event.preferred_term,
                grade=grade,
                msg_id=env.msg_id,
                occurrence=env.msg_id,
                observed_on=event.onset_date.text if event.onset_date else "",
                detail=f"{event.preferred_term} {_grade_text(event)}, reported as {event.verbatim_term!r}",
                ruleset_hash=ruleset.content_hash,
                ctcae_version=ctcae_version,
            )
        )
    return hits


def evaluate_finding(
    ruleset: Ruleset,
    finding: Finding,
    grades: tuple[GradeResult, ...],
    ctcae_version: str,
    baseline: Finding | None = None,
) -> list[RuleHit]:
    """Hits of every lab / vital / ECG rule on one graded finding (`baseline`: the subject's, for this test)."""
    hits = []
    env = finding.envelope
    for rule in ruleset.finding_rules_for(finding):
        assert isinstance(rule.condition, FindingCondition)
        found = rule.condition.match(finding, grades, baseline)
        if found is None:
            continue
        value = "no value" if finding.value is None else f"{finding.value:g} {finding.unit or ''}".strip()
        hits.append(
            RuleHit(
                rule=rule,
                alert_key=finding_alert_key(rule.id, finding, found.term),
                study_id=env.study_id,
                subject_id=env.subject_id,
                subject_ref=f"{finding.domain.value}:{found.term}",
                term=found.term,
                grade=found.grade,
                msg_id=env.msg_id,
                occurrence=env.msg_id,
                observed_on=finding.collected_at.text,
                detail=f"{finding.test_code} {value} -> {found.reason}",
                ruleset_hash=ruleset.content_hash,
                ctcae_version=ctcae_version,
            )
        )
    return hits


def evaluate_pattern(
    ruleset: Ruleset,
    rule: Rule,
    study_id: str,
    subject_id: str,
    findings: Iterable[GradedFinding],
    ctcae_version: str,
) -> list[RuleHit]:
    """Hits of one pattern rule over one subject's results: one per occurrence, identified by its measurement."""
    assert isinstance(rule.condition, PatternCondition)
    hits = []
    for match in rule.condition.evaluate(findings):
        hits.append(
            RuleHit(
                rule=rule,
                alert_key=pattern_alert_key(rule.id, study_id, subject_id),
                study_id=study_id,
                subject_id=subject_id,
                subject_ref="PATTERN",
                term=rule.condition.label,
                grade=match.grade,
                msg_id=match.anchor.envelope.msg_id,
                occurrence=match.occurrence,
                observed_on=match.occurrence,
                detail=match.detail,
                ruleset_hash=ruleset.content_hash,
                ctcae_version=ctcae_version,
            )
        )
    return hits


def cohort_hit(ruleset: Ruleset, rule: Rule, status: CohortStatus, msg_id: str, ctcae_version: str) -> RuleHit:
    """The hit of a cohort rule whose boundary is crossed, at the qualifying event `msg_id`."""
    assert isinstance(rule.condition, CohortCondition)
    return RuleHit(
        rule=rule,
        alert_key=cohort_alert_key(rule.id, status.study_id),
        study_id=status.study_id,
        subject_id="",
        subject_ref="COHORT",
        term=", ".join(sorted(rule.condition.terms)),
        grade=rule.condition.grade_at_least,
        msg_id=msg_id,
        occurrence=msg_id,
        observed_on=status.on.isoformat(),
        detail=status.detail,
        ruleset_hash=ruleset.content_hash,
        ctcae_version=ctcae_version,
    )


def deadline_hit(ruleset: Ruleset, rule: Rule, clock: SaeClock, event: AdverseEvent, ctcae_version: str) -> RuleHit:
    """The hit that raises a reporting-clock alert: the case, day 0 and the due date."""
    assert isinstance(rule.condition, DeadlineCondition)
    due = clock.due_at(rule.condition)
    days = (due - clock.started_at).days
    return RuleHit(
        rule=rule,
        alert_key=ae_alert_key(rule.id, event),
        study_id=clock.study_id,
        subject_id=clock.subject_id,
        subject_ref=f"AE:{clock.ae_spid}",
        term=event.preferred_term,
        grade=event.investigator_grade or 0,
        msg_id=event.envelope.msg_id,
        occurrence=event.envelope.msg_id,
        observed_on=event.onset_date.text if event.onset_date else "",
        detail=(
            f"potential SUSAR: {event.preferred_term} serious and suspected related; day 0 "
            f"{clock.started_at.isoformat(timespec='minutes')}; expedited report due "
            f"{due.isoformat(timespec='minutes')} (day {days})"
        ),
        ruleset_hash=ruleset.content_hash,
        ctcae_version=ctcae_version,
    )


def evaluate_subject_event(ruleset: Ruleset, event: SubjectEvent, ctcae_version: str) -> list[RuleHit]:
    """Hits of every subject-status rule on one SUBJECT message (e.g. a death)."""
    hits = []
    env = event.envelope
    for rule in ruleset.subject_rules:
        assert isinstance(rule.condition, SubjectCondition)
        if not rule.condition.matches(event):
            continue
        reason = f": {event.reason}" if event.reason else ""
        hits.append(
            RuleHit(
                rule=rule,
                alert_key=f"{rule.id}|{env.study_id}|{env.subject_id}|SUBJECT:{event.event.value}",
                study_id=env.study_id,
                subject_id=env.subject_id,
                subject_ref=f"SUBJECT:{event.event.value}",
                term=event.event.value,
                grade=rule.condition.grade(event),
                msg_id=env.msg_id,
                occurrence=env.msg_id,
                observed_on=event.event_date.text,
                detail=f"subject {env.subject_id} {event.event.value} on {event.event_date.text}{reason}",
                ruleset_hash=ruleset.content_hash,
                ctcae_version=ctcae_version,
            )
        )
    return hits


def ae_alert_keys(rules: Iterable[Rule], event: AdverseEvent) -> list[tuple[Rule, str]]:
    """Every (AE rule, alert key) an AE record could have raised: used to notice a removed basis."""
    return [(rule, ae_alert_key(rule.id, event)) for rule in rules]
