"""Owns the review workspace's use cases: each page's read view (the queue, an alert, a subject, eDISH, the SAE
clocks) and the review action a logged-in user records on an alert by its short id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.alerts import alert_id as short_id
from safety_monitor.domain.conditions.deadline import DeadlineCondition, SaeClock
from safety_monitor.domain.review import ActionKind, ReviewDecision, ReviewRefused, ReviewRequest
from safety_monitor.domain.rules import Rule, Ruleset
from safety_monitor.service.accounts import active_user
from safety_monitor.service.deadlines import clock_alert_key
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.review import AlertReview, UnknownAlert, alert_review, apply_review
from safety_monitor.service.workspace_views import (
    AlertEvidence,
    LiverPeak,
    QueueFilters,
    QueueRows,
    SubjectData,
    WorkspaceReads,
)

# Clocks due within this many days (or overdue) head the queue: the reminders of the deadline rule start at 3 days.
DUE_SOON = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class ClockRow:
    """One potential SUSAR's expedited-reporting clock (ICH E2A: 7 days for fatal or life-threatening, else 15)."""

    clock: SaeClock
    alert_id: str
    verbatim_term: str | None
    day0: datetime
    d7: datetime | None  # only once the case is known to be fatal or life-threatening
    d15: datetime
    due_at: datetime | None  # None: the rule is no longer in force
    status: str  # open / overdue / closed


@dataclass(frozen=True, slots=True)
class QueueView:
    rows: QueueRows
    filters: QueueFilters
    since: datetime | None  # "new since my last review" starts here (None: never reviewed, or not asked)
    clocks_due: list[ClockRow]


def _clock_row(clock: SaeClock, term: str | None, ruleset: Ruleset, now: datetime) -> ClockRow:
    rule = ruleset.by_id(clock.rule_id)
    condition = rule.condition if rule is not None and isinstance(rule.condition, DeadlineCondition) else None
    fatal_days = condition.fatal_days if condition else 7
    other_days = condition.other_days if condition else 15
    due = clock.due_at(condition) if condition else None
    d7 = clock.short_known_at + timedelta(days=fatal_days) if clock.short_known_at else None
    status = "overdue" if due is not None and now > due else "open"
    if not clock.is_open:
        status = "closed"
    return ClockRow(
        clock=clock,
        alert_id=short_id(clock_alert_key(clock)),
        verbatim_term=term,
        day0=clock.started_at,
        d7=d7,
        d15=clock.started_at + timedelta(days=other_days),
        due_at=due,
        status=status,
    )


async def sae_clocks(reads: WorkspaceReads, ruleset: Ruleset, now: datetime) -> list[ClockRow]:
    """Every potential SUSAR's clock: open ones first by due date, then closed ones, newest first."""
    rows = [_clock_row(clock, term, ruleset, now) for clock, term in await reads.clocks()]
    running = sorted((r for r in rows if r.status != "closed"), key=lambda r: (r.due_at or r.d15, r.alert_id))
    closed = sorted((r for r in rows if r.status == "closed"), key=lambda r: r.day0, reverse=True)
    return running + closed


async def alert_queue(
    reads: WorkspaceReads, ruleset: Ruleset, filters: QueueFilters, *, user_name: str, now: datetime
) -> QueueView:
    since = await reads.last_review_at(user_name) if filters.new_since_my_last_review else None
    rows = await reads.queue(filters, since)
    clocks = [r for r in await sae_clocks(reads, ruleset, now) if r.status != "closed"]
    due = [r for r in clocks if r.status == "overdue" or (r.due_at is not None and r.due_at - now <= DUE_SOON)]
    return QueueView(rows, filters, since, due)


@dataclass(frozen=True, slots=True)
class AlertPage:
    review: AlertReview
    rule: Rule | None  # None: the rule is no longer in the ruleset in force
    evidence: AlertEvidence
    clocks: list[ClockRow]


async def alert_page(
    uow_factory: UnitOfWorkFactory, reads: WorkspaceReads, ruleset: Ruleset, alert_id: str, *, now: datetime
) -> AlertPage:
    async with uow_factory() as uow:
        alert = await uow.alerts.by_id(alert_id)
    if alert is None:
        raise UnknownAlert(f"no alert {alert_id[:32]!r}")
    review = await alert_review(uow_factory, alert.key)
    evidence = await reads.evidence(alert)
    clocks = [_clock_row(c, None, ruleset, now) for c in review.clocks]
    return AlertPage(review, ruleset.by_id(alert.rule_id), evidence, clocks)


async def review_alert(
    uow_factory: UnitOfWorkFactory,
    user_name: str,
    alert_id: str,
    kind: ActionKind,
    reason: str,
    at: datetime,
    *,
    duplicate_of_id: str | None = None,
    **values: Any,
) -> tuple[Alert, ReviewDecision]:
    """Record a review action by the logged-in user on the alert with this short id, in one transaction (the
    action, its audit-log entry and its effect on the reporting clock). A duplicate names the other alert by id."""
    async with uow_factory() as uow:
        alert = await uow.alerts.by_id(alert_id)
        if alert is None:
            raise UnknownAlert(f"no alert {alert_id[:32]!r}")
        if duplicate_of_id:
            original = await uow.alerts.by_id(duplicate_of_id.strip())
            if original is None:
                raise ReviewRefused(f"no alert {duplicate_of_id[:32]!r} to be a duplicate of")
            values["duplicate_of"] = original.key
        user = await active_user(uow, user_name)
        decision = await apply_review(uow, ReviewRequest(alert.key, kind, user.name, user.role, reason, at, **values))
        await uow.commit()
    return alert, decision


async def subject_timeline(reads: WorkspaceReads, subject_id: str) -> SubjectData | None:
    return await reads.subject(subject_id)


async def edish_points(reads: WorkspaceReads) -> list[LiverPeak]:
    return await reads.liver_peaks()
