"""Owns what an alert notice says: the context the mail templates may show about an alert and its change."""

from __future__ import annotations

from datetime import datetime

from safety_monitor.domain.alerts import Alert


def alert_context(
    alert: Alert, change: str, previous_grade: int | None, msg_id: str, changed_at: datetime
) -> dict[str, object]:
    """What the mail templates may show about an alert and the change being notified."""
    return {
        "change": change,
        "previous_grade": previous_grade,
        "alert_key": alert.key,
        "alert_id": alert.id,  # the alert's page in the review workspace: PUBLIC_URL/alerts/ID
        "rule_id": alert.rule_id,
        "rule_title": alert.rule_title,
        "severity": alert.severity,
        "action": alert.action,
        "study_id": alert.study_id,
        "subject_id": alert.subject_id,
        "subject_ref": alert.subject_ref,
        "term": alert.term,
        "observed_on": alert.observed_on,
        "grade": alert.grade,
        "status": alert.status.value,
        "detail": alert.detail,
        "msg_id": msg_id,
        "raised_at": alert.raised_at.isoformat(),
        "changed_at": changed_at.isoformat(),
        "ruleset_hash": alert.ruleset_hash,
        "ctcae_version": alert.ctcae_version,
    }
