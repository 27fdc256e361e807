"""Owns recording review actions (the audit row and its effect on the reporting clock, in one transaction) and the
review read views: the queue of open alerts with their review status, and one alert with its audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.conditions.deadline import ClockKey, DeadlineCondition, SaeClock, overdue_by
from safety_monitor.domain.review import (
    ActionKind,
    ClockEffect,
    ReviewAction,
    ReviewDecision,
    ReviewRefused,
    ReviewRequest,
    ReviewState,
    ReviewStatus,
    audit_record,
    case_of,
    closed_as_expected,
    decide,
    review_state,
)
from safety_monitor.domain.rules import Ruleset, Severity
from safety_monitor.service.accounts import active_user
from safety_monitor.service.audit import append_audit
from safety_monitor.service.deadlines import clock_alert_key, close_case_clocks, reopen_case_clocks
from safety_monitor.service.ports import UnitOfWork, UnitOfWorkFactory
from safety_monitor.service.records import Notice
from safety_monitor.service.views import delivery_health


class UnknownAlert(LookupError):
    """The alert key names no alert in the store."""


async def record_review(uow_factory: UnitOfWorkFactory, request: ReviewRequest) -> ReviewDecision:
    """Append one review action, its audit-log entry and its effect, in one transaction; raises UnknownAlert or
    ReviewRefused (nothing is written then). The reviewer must be an active account holding the request's role."""
    async with uow_factory() as uow:
        decision = await apply_review(uow, request)
        await uow.commit()
    return decision


async def record_review_as(
    uow_factory: UnitOfWorkFactory,
    user_name: str,
    alert_key: str,
    kind: ActionKind,
    reason: str,
    at: datetime,
    **values: Any,
) -> ReviewDecision:
    """`record_review` by the account `user_name`, in the role the users table gives it (never one claimed)."""
    async with uow_factory() as uow:
        user = await active_user(uow, user_name)
        request = ReviewRequest(alert_key, kind, user.name, user.role, reason, at, **values)
        decision = await apply_review(uow, request)
        await uow.commit()
    return decision


async def apply_review(uow: UnitOfWork, request: ReviewRequest) -> ReviewDecision:
    """`record_review` inside the caller's transaction.

    An "expected" assessment or a submitted report stops the reporting clock of the alert's AE case through the
    same path as `close_clocks` (service/deadlines.py), so `check_deadlines` owes it no reminder and no overdue
    escalation afterwards; closing is not notified (the deadline code sends nothing on closure either). An
    "unexpected" assessment that withdraws an "expected" one runs the clock again.
    """
    wanted = {request.alert_key} | ({request.duplicate_of} if request.duplicate_of else set())
    alerts = await uow.alerts.get(wanted)
    alert = alerts.get(request.alert_key)
    if alert is None:
        raise UnknownAlert(f"no alert {request.alert_key!r} (see `safety-monitor review queue`)")
    if request.duplicate_of and request.duplicate_of not in alerts:
        raise ReviewRefused(f"no alert {request.duplicate_of!r} to be a duplicate of")
    reviewer = await uow.users.get(request.reviewer)
    if reviewer is None or reviewer.disabled or reviewer.role is not request.role:
        raise ReviewRefused(f"{request.reviewer[:64]!r} is not an active {request.role.value} account")
    history = (await uow.review_actions.for_alerts([alert.key])).get(alert.key, [])
    case = case_of(alert)
    clocks = await uow.sae_clocks.for_case(case) if case is not None else []
    decision = decide(history, request, clocks)
    if case is not None and decision.clock_effect is ClockEffect.CLOSED:
        await close_case_clocks(uow, case, decision.clock_reason or "", decision.clock_at or request.at)
    elif case is not None and decision.clock_effect is ClockEffect.REOPENED:
        await reopen_case_clocks(uow, case, closed_as_expected)
    await uow.review_actions.add([decision.action])
    await append_audit(uow, [audit_record(decision.action)])
    return decision


async def record_report_submitted(
    uow_factory: UnitOfWorkFactory,
    case: ClockKey,
    *,
    user_name: str,
    reason: str,
    at: datetime,
    submitted_at: datetime,
) -> ReviewDecision:
    """`safety-monitor sae report-submitted`: the submission recorded as a review action on the case's clock alert
    (so it is in the audit trail), which stops every clock of the case."""
    async with uow_factory() as uow:
        user = await active_user(uow, user_name)
        clocks = await uow.sae_clocks.for_case(case)
        if not clocks:
            raise ReviewRefused(f"no reporting clock for subject {case[1]} AE {case[2]}")
        clock = next((c for c in clocks if c.is_open), clocks[0])
        request = ReviewRequest(
            clock_alert_key(clock),
            ActionKind.REPORT_SUBMITTED,
            user.name,
            user.role,
            reason,
            at,
            submitted_at=submitted_at,
        )
        decision = await apply_review(uow, request)
        await uow.commit()
    return decision


@dataclass(frozen=True, slots=True)
class AlertReview:
    """An alert as a reviewer sees it: its review state, audit trail and the reporting clocks of its case."""

    alert: Alert
    state: ReviewState
    actions: list[ReviewAction] = field(default_factory=list)
    clocks: list[SaeClock] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    items: list[AlertReview]
    since: datetime | None  # "new since last review" starts here (None: everything is new, or not asked)
    # Alert emails nobody has received yet past the overdue threshold, and those a server refused for good
    # for a recipient: shown above the queue, loudly (asked for with `now`).
    overdue_emails: list[Notice] = field(default_factory=list)
    undeliverable_emails: list[tuple[Notice, dict[str, str]]] = field(default_factory=list)


async def alert_review(uow_factory: UnitOfWorkFactory, alert_key: str) -> AlertReview:
    async with uow_factory() as uow:
        alert = (await uow.alerts.get([alert_key])).get(alert_key)
        if alert is None:
            raise UnknownAlert(f"no alert {alert_key!r} (see `safety-monitor review queue`)")
        actions = (await uow.review_actions.for_alerts([alert_key])).get(alert_key, [])
        case = case_of(alert)
        clocks = await uow.sae_clocks.for_case(case) if case is not None else []
    return AlertReview(alert, review_state(actions), actions, clocks)


SEVERITY_RANK = {s.value: rank for rank, s in enumerate(Severity)}  # critical first


def most_overdue(review: AlertReview, ruleset: Ruleset | None, now: datetime | None) -> timedelta | None:
    """How long the most overdue open reporting clock of the alert's case is past due (None: none is)."""
    if ruleset is None or now is None:
        return None
    late = []
    for clock in review.clocks:
        rule = ruleset.by_id(clock.rule_id)
        if rule is not None and isinstance(rule.condition, DeadlineCondition):
            found = overdue_by(clock, rule.condition, now)
            if found is not None:
                late.append(found)
    return max(late, default=None)


def queue_order(review: AlertReview, ruleset: Ruleset | None, now: datetime | None) -> tuple[object, ...]:
    """Overdue reporting clocks first (most overdue first), then unreviewed before reviewed, then by severity and
    grade (worst first), then the oldest first: what a reviewer must act on comes first."""
    order = {ReviewStatus.NEW: 0, ReviewStatus.ACKNOWLEDGED: 1, ReviewStatus.ADJUDICATED: 2}
    late = most_overdue(review, ruleset, now)
    return (
        -late.total_seconds() if late is not None else 1.0,
        order[review.state.status],
        SEVERITY_RANK.get(review.alert.severity, len(SEVERITY_RANK)),
        -review.alert.grade,
        review.alert.raised_at,
        review.alert.key,
    )


async def review_queue(
    uow_factory: UnitOfWorkFactory,
    *,
    new_since_last_review: bool = False,
    reviewer: str | None = None,
    ruleset: Ruleset | None = None,
    now: datetime | None = None,
) -> ReviewQueue:
    """Open alerts with their review status, in `queue_order` (overdue clocks first: needs `ruleset` and `now`).

    With `new_since_last_review`, only alerts with a change (raised, escalated, reminder, update, ...) after the
    reviewer's last review action (anyone's, without a reviewer); never having reviewed, everything is new.
    """
    async with uow_factory() as uow:
        alerts = await uow.alerts.open()
        since: datetime | None = None
        if new_since_last_review:
            since = await uow.review_actions.last_at(reviewer)
            if since is not None:
                changed = {c.alert.key for c in await uow.alerts.changes_since(since)}
                alerts = [a for a in alerts if a.key in changed]
        trails = await uow.review_actions.for_alerts(a.key for a in alerts)
        open_clocks: dict[ClockKey, list[SaeClock]] = {}
        for clock in await uow.sae_clocks.open():
            open_clocks.setdefault(clock.key, []).append(clock)
    items = []
    for alert in alerts:
        actions = trails.get(alert.key, [])
        case = case_of(alert)
        items.append(AlertReview(alert, review_state(actions), actions, open_clocks.get(case, []) if case else []))
    items.sort(key=lambda i: queue_order(i, ruleset, now))
    if now is None:
        return ReviewQueue(items, since)
    delivery = await delivery_health(uow_factory, now)
    return ReviewQueue(items, since, delivery.overdue, delivery.undeliverable)
