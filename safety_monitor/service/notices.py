"""Owns what an alert notice says: the context the mail templates may show about an alert and its change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.messages import AdverseEvent, SiteMessage


def shown_time(at: datetime) -> str:
    """A time as the mails show it: to the minute, with its offset ("2026-05-01 08:00+08:00", "... 00:00 UTC")."""
    offset = at.utcoffset()
    if offset is None:
        return at.strftime("%Y-%m-%d %H:%M")
    if offset == timedelta(0):
        return at.strftime("%Y-%m-%d %H:%M UTC")
    return at.isoformat(sep=" ", timespec="minutes")


def report_context(message: SiteMessage | None, subject_known: bool) -> dict[str, object]:
    """What the site's report behind a change adds to its notice: the site, when the site sent it (in the site's
    own offset), and for an AE the seriousness criteria, causality, outcome and action taken per drug. A subject
    with no SUBJECT message yet is said to be unknown, so a mistyped USUBJID is not taken for a new patient."""
    if message is None:
        return {}
    envelope = message.envelope
    context: dict[str, object] = {
        "site_id": envelope.site_id,
        "site_sent_at": shown_time(envelope.sent_at),
        "subject_unknown": not subject_known,
    }
    if isinstance(message, AdverseEvent):
        criteria = [
            name
            for name, flag in (
                ("death", message.death),
                ("life-threatening", message.life_threatening),
                ("hospitalisation", message.hospitalisation),
            )
            if (flag or "").upper() == "Y"
        ]
        context |= {
            "serious": (message.serious or "not given").upper(),
            "seriousness_criteria": criteria,
            "outcome": message.outcome or "not given",
            "causality_by_drug": {"anlotinib": message.causality_anlotinib, "ICI": message.causality_ici},
            "action_by_drug": {"anlotinib": message.action_anlotinib, "ICI": message.action_ici},
        }
    return context


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
        "raised_at_shown": shown_time(alert.raised_at.astimezone(UTC)),
        "changed_at_shown": shown_time(changed_at.astimezone(UTC)),
        "ruleset_hash": alert.ruleset_hash,
        "ctcae_version": alert.ctcae_version,
    }
