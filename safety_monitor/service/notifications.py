"""Owns routed notifications: planning them per receiver and group, flushing due groups into emails, reminders.

Crash safety, step by step (docs/architecture.md, "The runtime contract"):
1. `plan_notifications` runs inside the batch's transaction: alert changes, notifications, groups and the
   notification log commit together or not at all. A redelivered batch yields the same notification ids
   (built from the alert change and the receiver), and inserts are idempotent.
2. `flush_due` emails each due group in its own transaction: the group's pending notifications are moved
   into ONE outbox email (its id, hence its Message-ID, derived from the set of notification ids), the log
   records what each receiver was told. The move is conditional on the rows still being pending, so a
   concurrent flush cannot put a notification in two emails; a crash before commit leaves them pending.
3. The outbox sender (service/delivery.py) sends and marks sent, retrying with backoff; a crash between the
   SMTP server's acceptance and the mark re-sends the same Message-ID, which mail clients fold together.
4. `plan_repeats` writes reminders with ids built from the last notification time: a re-run writes nothing new.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from safety_monitor.domain.alerts import Alert, AlertChange, ChangeKind
from safety_monitor.domain.notifications import (
    REPEAT,
    Pending,
    Verdict,
    decide,
    mail_id,
    notification_id,
    repeat_id,
)
from safety_monitor.domain.routing import (
    NO_INHIBITIONS,
    Inhibitions,
    InhibitionSources,
    Labels,
    Routing,
    alert_labels,
    destinations,
    group_due_at,
    repeat_due,
)
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.notices import alert_context
from safety_monitor.service.ports import UnitOfWork, UnitOfWorkFactory
from safety_monitor.service.records import (
    AlertNotificationState,
    Notice,
    Notification,
    NotificationGroup,
)

log = logging.getLogger(__name__)

ALERTS_MAIL = "alerts"  # outbox kind of a grouped alert email (context: receiver, notifications)


def labels_for(alert: Alert, ruleset: Ruleset) -> dict[str, str]:
    """The alert's labels: its rule's labels (if the rule is still in force) plus the built-in ones."""
    rule = next((r for r in ruleset.rules if r.id == alert.rule_id), None)
    if rule is None:
        return alert_labels(alert)
    return alert_labels(alert, rule.labels, str(getattr(rule.condition, "kind", "")))


async def plan_notifications(
    uow: UnitOfWork,
    routing: Routing,
    ruleset: Ruleset,
    changes: Sequence[tuple[AlertChange, Notice]],
    now: datetime,
) -> list[Notification]:
    """Route each alert change to its receivers' groups (inside the batch's transaction); returns what it wrote."""
    notifications: list[Notification] = []
    groups: dict[str, NotificationGroup] = {}
    states: dict[tuple[str, str], AlertNotificationState] = {}
    for change, notice in changes:
        alert = change.alert
        labels = labels_for(alert, ruleset)
        for destination in destinations(routing, labels, alert.key):
            receiver = routing.receivers[destination.receiver]
            groups[destination.group_id] = NotificationGroup(
                group_id=destination.group_id,
                receiver=receiver.name,
                route_id=destination.route.id,
                group_labels=destination.group_labels,
                recipients=receiver.emails,
                timing=destination.route.timing,
            )
            notifications.append(
                Notification(
                    notification_id=notification_id(notice.notice_id, receiver.name),
                    receiver=receiver.name,
                    group_id=destination.group_id,
                    alert_key=alert.key,
                    kind=change.kind.value,
                    urgent=change.kind is ChangeKind.ESCALATED,
                    context={**notice.context, "labels": labels},
                    created_at=now,
                )
            )
            states[(receiver.name, alert.key)] = AlertNotificationState(
                receiver.name, alert.key, destination.group_id, labels, alert.status.value, alert.grade
            )
    await uow.notifications.put_groups(list(groups.values()))
    await uow.notifications.add(notifications)
    await uow.notifications.track(list(states.values()))
    return notifications


@dataclass(slots=True)
class FlushReport:
    emails: int = 0  # outbox emails written
    notifications: int = 0  # notifications they carry
    held: int = 0  # silenced or inhibited now (kept pending)
    dropped: int = 0
    waiting: int = 0  # in groups not due yet (group_wait / group_interval)
    next_due_at: datetime | None = None  # when the first waiting group is due
    mail_ids: list[str] = field(default_factory=list)


_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "info": 3}


def _grade(value: object) -> int:
    return value if isinstance(value, int) else 0


FLUSH_PAGE = 2_000  # pending notifications a delivery pass reads at once (a larger group is read alone)
OPEN_ALERT_PAGE = 5_000  # open alerts read at once while indexing the inhibition sources


def _pages(groups: Sequence[NotificationGroup], counts: dict[str, int]) -> list[list[NotificationGroup]]:
    """Consecutive due groups whose pending notifications add up to at most `FLUSH_PAGE` (at least one group)."""
    pages: list[list[NotificationGroup]] = []
    page: list[NotificationGroup] = []
    held = 0
    for group in groups:
        count = counts[group.group_id]
        if page and held + count > FLUSH_PAGE:
            pages.append(page)
            page, held = [], 0
        page.append(group)
        held += count
    if page:
        pages.append(page)
    return pages


async def _inhibitions(store: UnitOfWorkFactory, routing: Routing) -> Inhibitions:
    """The inhibit rules with their open sources, read a page of open alerts at a time: a notification's check then
    costs one lookup per rule, and the pass holds the index, not every open alert."""
    sources = InhibitionSources(routing.inhibit_rules)
    after: tuple[str, str] | None = None
    while True:
        async with store() as uow:
            entries = await uow.notifications.open_alerts(after, OPEN_ALERT_PAGE)
        sources.add((entry.alert_key, entry.labels) for entry in entries)
        if len(entries) < OPEN_ALERT_PAGE:
            return sources.build()
        after = (entries[-1].receiver, entries[-1].alert_key)


async def flush_due(
    store: UnitOfWorkFactory, routing: Routing | None, now: datetime, *, ignore_waits: bool = False
) -> FlushReport:
    """Write one outbox email per due group with the group's sendable notifications.

    `routing` supplies the silences and inhibit rules in force; without it nothing is held (a missed alert is
    worse than an unsilenced one). Timing and addresses come from each group as the pipeline stored it, so a
    group keeps working if its receiver disappears from a reloaded routing file. `ignore_waits` emails every
    group with pending notifications now (the demo, which compresses months into seconds).

    Which groups are due is decided from a summary of each group (no notification read); the notifications
    and log entries are then read a page of groups at a time (`FLUSH_PAGE` notifications), so a pass holds a
    page, not the backlog.
    """
    report = FlushReport()
    async with store() as uow:
        summaries = await uow.notifications.pending_groups()
        if not summaries:
            return report
        groups = await uow.notifications.groups({s.group_id for s in summaries})
    inhibitions = NO_INHIBITIONS
    if routing is not None and routing.inhibit_rules:
        inhibitions = await _inhibitions(store, routing)
    due_groups: list[NotificationGroup] = []
    counts: dict[str, int] = {}
    for summary in sorted(summaries, key=lambda s: (s.earliest_pending, s.group_id)):
        group = groups.get(summary.group_id)
        if group is None:  # cannot happen (written together); never drop silently: send to nobody is worse
            log.error("notification group missing group=%s notifications=%d", summary.group_id, summary.count)
            continue
        due = group_due_at(
            earliest_pending=summary.earliest_pending,
            last_flush_at=group.last_flush_at,
            timing=group.timing,
            urgent=summary.urgent,
        )
        if due > now and not ignore_waits:
            report.waiting += summary.count
            report.next_due_at = due if report.next_due_at is None else min(report.next_due_at, due)
            continue
        due_groups.append(group)
        counts[group.group_id] = summary.count
    for page in _pages(due_groups, counts):
        async with store() as uow:
            pending = await uow.notifications.pending({g.group_id for g in page})
            entries = await uow.notifications.log({(n.receiver, n.alert_key) for n in pending})
        by_group: dict[str, list[Notification]] = defaultdict(list)
        for notification in pending:
            by_group[notification.group_id].append(notification)
        for group in page:
            items = by_group.get(group.group_id)
            if items:  # none left: a concurrent flush emailed the group since the summary was read
                await _flush_group(store, routing, group, items, entries, inhibitions, now, report)
    return report


async def _flush_group(
    store: UnitOfWorkFactory,
    routing: Routing | None,
    group: NotificationGroup,
    items: list[Notification],
    entries: dict[tuple[str, str], AlertNotificationState],
    inhibitions: Inhibitions,
    now: datetime,
    report: FlushReport,
) -> None:
    silences = routing.silences if routing is not None else ()
    recipients = group.recipients
    if routing is not None and group.receiver in routing.receivers:
        recipients = routing.receivers[group.receiver].emails  # addresses as configured now
    send: list[Notification] = []
    held: list[tuple[str, str]] = []
    dropped: list[tuple[str, str]] = []
    async with store() as uow:
        for item in items:
            entry = entries.get((item.receiver, item.alert_key))
            decision = decide(
                Pending(
                    kind=item.kind,
                    alert_key=item.alert_key,
                    labels=entry.labels if entry else item.context.get("labels", {}),
                    alert_open=entry.status == "open" if entry else True,
                    receiver_notified=entry is not None and entry.last_notified_at is not None,
                    was_held=item.held_by is not None,
                ),
                now,
                silences,
                inhibitions,
            )
            if decision.verdict is Verdict.SEND:
                send.append(item)
            elif decision.verdict is Verdict.HOLD:
                report.held += 1
                if item.held_by != decision.reason:
                    held.append((item.notification_id, decision.reason))
            else:
                report.dropped += 1
                dropped.append((item.notification_id, decision.reason))
        await uow.notifications.hold(held)
        await uow.notifications.drop(dropped, now)
        if send:
            ids = [n.notification_id for n in send]
            email_id = mail_id(ids)
            if await uow.notifications.mark_mailed(ids, email_id, now) != len(ids):
                log.warning("group taken by a concurrent flush group=%s; leaving it", group.group_id)
                return  # rolled back: the other flush owns these notifications
            context: dict[str, object] = {
                "receiver": group.receiver,
                "group_labels": dict(group.group_labels),
                # Escalations (a rise in grade, an overdue report) first, then worst first: severity, grade.
                "notifications": sorted(
                    (n.context | {"change": n.kind} for n in send),
                    key=lambda c: (
                        c["change"] != "escalated",
                        _SEVERITY_RANK.get(str(c.get("severity")), 9),
                        -_grade(c.get("grade")),
                    ),
                ),
            }
            await uow.outbox.add(
                [Notice(email_id, group.group_id, ALERTS_MAIL, recipients, context, now)],
            )
            await uow.notifications.record_email(
                group.group_id, [(n.receiver, n.alert_key) for n in send], email_id, now
            )
            report.emails += 1
            report.notifications += len(send)
            report.mail_ids.append(email_id)
        await uow.commit()


def _reminder_context(alert: Alert, labels: Labels, now: datetime) -> dict[str, object]:
    return {**alert_context(alert, REPEAT, None, alert.last_msg_id, now), "labels": dict(labels)}


async def plan_repeats(store: UnitOfWorkFactory, now: datetime) -> int:
    """Write a reminder for every open alert a receiver last heard of `repeat_interval` ago (idempotent).

    The open alerts are walked `OPEN_ALERT_PAGE` at a time, each page with its groups and their pending
    notifications, so a run holds a page, not every open alert of the trial."""
    written = 0
    after: tuple[str, str] | None = None
    async with store() as uow:
        while True:
            entries = await uow.notifications.open_alerts(after, OPEN_ALERT_PAGE)
            if not entries:
                break
            after = (entries[-1].receiver, entries[-1].alert_key)
            written += await _remind(uow, entries, now)
            if len(entries) < OPEN_ALERT_PAGE:
                break
        await uow.commit()
    return written


async def _remind(uow: UnitOfWork, entries: Sequence[AlertNotificationState], now: datetime) -> int:
    """The reminders due for one page of open alerts' log entries, written; returns how many."""
    groups = await uow.notifications.groups({e.group_id for e in entries})
    waiting = {(n.receiver, n.alert_key) for n in await uow.notifications.pending(groups)}
    due = [
        e
        for e in entries
        if e.group_id in groups
        and (e.receiver, e.alert_key) not in waiting
        and repeat_due(e.last_notified_at, groups[e.group_id].timing.repeat_interval, now)
    ]
    if not due:
        return 0
    alerts = await uow.alerts.get({e.alert_key for e in due})
    reminders = []
    for entry in due:
        alert = alerts.get(entry.alert_key)
        if alert is None or entry.last_notified_at is None:
            continue
        reminders.append(
            Notification(
                notification_id=repeat_id(entry.receiver, entry.alert_key, entry.last_notified_at),
                receiver=entry.receiver,
                group_id=entry.group_id,
                alert_key=entry.alert_key,
                kind=REPEAT,
                urgent=False,
                context=_reminder_context(alert, entry.labels, now),
                created_at=now,
            )
        )
    await uow.notifications.add(reminders)
    return len(reminders)
