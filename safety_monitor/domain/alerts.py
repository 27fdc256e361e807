"""Owns alerts: identity, the raise / escalate / basis-removed lifecycle, and the notices they send."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from safety_monitor.domain.rules import RuleHit


class AlertStatus(StrEnum):
    OPEN = "open"
    BASIS_REMOVED = "basis_removed"  # a correction removed what raised it; kept, never deleted


class ChangeKind(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"  # the grade rose: notify at once, whatever any repeat interval says
    BASIS_REMOVED = "basis_removed"
    REINSTATED = "reinstated"
    REMINDER = "reminder"  # a deadline is near (the expedited-reporting clock); overdue escalates instead


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert per identity (rule + subject + AE record, or rule + subject + finding term)."""

    key: str
    rule_id: str
    rule_title: str
    severity: str
    action: str
    study_id: str
    subject_id: str
    subject_ref: str
    term: str
    observed_on: str  # onset or collection date (as the site sent it) of the fact behind the latest change
    grade: int  # the highest grade notified so far
    status: AlertStatus
    raised_at: datetime
    updated_at: datetime
    last_msg_id: str
    detail: str
    ruleset_hash: str
    ctcae_version: str

    @property
    def id(self) -> str:
        return alert_id(self.key)


def alert_id(key: str) -> str:
    """The alert's short id in the workspace's URLs and API: 64 bits of the key's SHA-256 (stable, URL-safe)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AlertChange:
    """Something about an alert that people must hear: the reason an outbox row is written."""

    alert: Alert
    kind: ChangeKind
    previous_grade: int | None
    msg_id: str
    at: datetime

    @property
    def notice_id(self) -> str:
        """Stable across redeliveries of the same message: the email's Message-ID is built from it."""
        basis = f"{self.alert.key}|{self.kind.value}|{self.alert.grade}|{self.msg_id}"
        return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _new_alert(hit: RuleHit, now: datetime) -> Alert:
    return Alert(
        key=hit.alert_key,
        rule_id=hit.rule.id,
        rule_title=hit.rule.title,
        severity=hit.rule.severity.value,
        action=hit.rule.action,
        study_id=hit.study_id,
        subject_id=hit.subject_id,
        subject_ref=hit.subject_ref,
        term=hit.term,
        observed_on=hit.observed_on,
        grade=hit.grade,
        status=AlertStatus.OPEN,
        raised_at=now,
        updated_at=now,
        last_msg_id=hit.msg_id,
        detail=hit.detail,
        ruleset_hash=hit.ruleset_hash,
        ctcae_version=hit.ctcae_version,
    )


def on_hit(existing: Alert | None, hit: RuleHit, now: datetime) -> tuple[Alert, AlertChange | None]:
    """The alert after a rule hit, and the change to notify (None for a repeat at the same or a lower grade)."""
    if existing is None:
        alert = _new_alert(hit, now)
        return alert, AlertChange(alert, ChangeKind.RAISED, None, hit.msg_id, now)
    updated = replace(
        existing,
        updated_at=now,
        last_msg_id=hit.msg_id,
        detail=hit.detail,
        ruleset_hash=hit.ruleset_hash,
        ctcae_version=hit.ctcae_version,
    )
    if existing.status is AlertStatus.BASIS_REMOVED:
        alert = replace(updated, status=AlertStatus.OPEN, grade=hit.grade, observed_on=hit.observed_on)
        return alert, AlertChange(alert, ChangeKind.REINSTATED, existing.grade, hit.msg_id, now)
    if hit.grade > existing.grade:
        alert = replace(updated, grade=hit.grade, term=hit.term, observed_on=hit.observed_on)
        return alert, AlertChange(alert, ChangeKind.ESCALATED, existing.grade, hit.msg_id, now)
    return updated, None


def on_basis_removed(existing: Alert, msg_id: str, reason: str, now: datetime) -> tuple[Alert, AlertChange] | None:
    """A corrected record no longer meets the rule: mark the alert and send an update; nothing is deleted."""
    if existing.status is AlertStatus.BASIS_REMOVED:
        return None
    alert = replace(existing, status=AlertStatus.BASIS_REMOVED, updated_at=now, last_msg_id=msg_id, detail=reason)
    return alert, AlertChange(alert, ChangeKind.BASIS_REMOVED, existing.grade, msg_id, now)
