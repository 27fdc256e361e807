"""Owns safety rules and their evaluation against facts, producing rule hits with a stable alert identity."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from safety_monitor.domain.conditions.ae import AeCondition
from safety_monitor.domain.conditions.finding import FindingCondition
from safety_monitor.domain.grading import GradeResult
from safety_monitor.domain.messages import AdverseEvent, Finding

Condition = AeCondition | FindingCondition


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Rule:
    """One safety rule: what counts as a signal, why, and the protocol action it recommends."""

    id: str
    title: str
    condition: Condition
    severity: Severity
    action: str = ""
    rationale: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    source: str = ""  # "rules/pulmonary.yaml:4"


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The rules in force, identified by a content hash recorded with every hit and alert."""

    rules: tuple[Rule, ...]
    content_hash: str
    ae_rules: tuple[Rule, ...] = field(init=False)
    finding_rules: tuple[Rule, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_rules", tuple(r for r in self.rules if isinstance(r.condition, AeCondition)))
        object.__setattr__(
            self, "finding_rules", tuple(r for r in self.rules if isinstance(r.condition, FindingCondition))
        )


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule matched a fact. `alert_key` is the identity of the alert it raises or keeps open."""

    rule: Rule
    alert_key: str
    study_id: str
    subject_id: str
    subject_ref: str  # the AE record ("AE:AE-14") or the finding term ("VS:Hypertension")
    term: str
    grade: int
    msg_id: str
    observed_on: str  # onset or collection date as the site sent it
    detail: str
    ruleset_hash: str
    ctcae_version: str


def ae_alert_key(rule_id: str, event: AdverseEvent) -> str:
    # Identity for AE rules: rule + subject + AE record, so follow-ups of the same AE are one alert
    # and a new AE record (a recurrence) is a new alert (DESIGN.md section 6).
    env = event.envelope
    return f"{rule_id}|{env.study_id}|{env.subject_id}|AE:{event.ae_spid}"


def finding_alert_key(rule_id: str, finding: Finding, term: str) -> str:
    env = finding.envelope
    return f"{rule_id}|{env.study_id}|{env.subject_id}|{finding.domain.value}:{term}"


def evaluate_ae(ruleset: Ruleset, event: AdverseEvent, ctcae_version: str) -> list[RuleHit]:
    """Hits of every AE rule on the current version of one AE record."""
    hits = []
    env = event.envelope
    for rule in ruleset.ae_rules:
        assert isinstance(rule.condition, AeCondition)
        if rule.condition.matches(event):
            grade = event.investigator_grade or 0
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
                    observed_on=event.onset_date.text if event.onset_date else "",
                    detail=f"{event.preferred_term} grade {grade} (investigator), reported as {event.verbatim_term!r}",
                    ruleset_hash=ruleset.content_hash,
                    ctcae_version=ctcae_version,
                )
            )
    return hits


def evaluate_finding(
    ruleset: Ruleset, finding: Finding, grades: tuple[GradeResult, ...], ctcae_version: str
) -> list[RuleHit]:
    """Hits of every lab / vital / ECG rule on one graded finding."""
    hits = []
    env = finding.envelope
    for rule in ruleset.finding_rules:
        assert isinstance(rule.condition, FindingCondition)
        graded = rule.condition.matches(finding, grades)
        if graded is None:
            continue
        value = "no value" if finding.value is None else f"{finding.value:g} {finding.unit or ''}".strip()
        qualifier = " (provisional)" if graded.provisional else ""
        hits.append(
            RuleHit(
                rule=rule,
                alert_key=finding_alert_key(rule.id, finding, graded.term),
                study_id=env.study_id,
                subject_id=env.subject_id,
                subject_ref=f"{finding.domain.value}:{graded.term}",
                term=graded.term,
                grade=graded.grade,
                msg_id=env.msg_id,
                observed_on=finding.collected_at.text,
                detail=f"{finding.test_code} {value} -> {graded.term} grade {graded.grade}{qualifier}",
                ruleset_hash=ruleset.content_hash,
                ctcae_version=ctcae_version,
            )
        )
    return hits


def ae_alert_keys(rules: Iterable[Rule], event: AdverseEvent) -> list[tuple[Rule, str]]:
    """Every (AE rule, alert key) an AE record could have raised: used to notice a removed basis."""
    return [(rule, ae_alert_key(rule.id, event)) for rule in rules]
