"""Owns the in-memory notifications, their groups and log, and the email outbox."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from safety_monitor.adapters.memory.state import MemoryRepository
from safety_monitor.service.records import AlertNotificationState, Notice, Notification, NotificationGroup, PendingGroup


class MemoryNotifications(MemoryRepository):
    async def put_groups(self, groups: Sequence[NotificationGroup]) -> None:
        for group in groups:
            known = self.s.notification_groups.get(group.group_id)
            last = known.last_flush_at if known is not None else None
            self.s.notification_groups[group.group_id] = replace(group, last_flush_at=last)

    async def add(self, notifications: Sequence[Notification]) -> None:
        for notification in notifications:
            self.s.notifications.setdefault(notification.notification_id, notification)

    async def track(self, states: Sequence[AlertNotificationState]) -> None:
        for state in states:
            key = (state.receiver, state.alert_key)
            known = self.s.notification_log.get(key)
            if known is not None:
                state = replace(state, last_notified_at=known.last_notified_at, last_mail_id=known.last_mail_id)
            self.s.notification_log[key] = state

    async def pending(self, group_ids: Iterable[str] | None = None) -> list[Notification]:
        wanted = None if group_ids is None else set(group_ids)
        found = [
            n
            for n in self.s.notifications.values()
            if n.state == "pending" and (wanted is None or n.group_id in wanted)
        ]
        return sorted(found, key=lambda n: (n.created_at, n.notification_id))

    async def pending_groups(self) -> list[PendingGroup]:
        summary: dict[str, PendingGroup] = {}
        for n in self.s.notifications.values():
            if n.state != "pending":
                continue
            seen = summary.get(n.group_id)
            summary[n.group_id] = (
                PendingGroup(n.group_id, n.created_at, n.urgent, 1)
                if seen is None
                else PendingGroup(
                    n.group_id, min(seen.earliest_pending, n.created_at), seen.urgent or n.urgent, seen.count + 1
                )
            )
        return list(summary.values())

    async def groups(self, group_ids: Iterable[str]) -> dict[str, NotificationGroup]:
        return {g: self.s.notification_groups[g] for g in group_ids if g in self.s.notification_groups}

    async def log(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AlertNotificationState]:
        return {k: self.s.notification_log[k] for k in keys if k in self.s.notification_log}

    async def open_alerts(
        self, after: tuple[str, str] | None = None, limit: int | None = None
    ) -> list[AlertNotificationState]:
        entries = sorted(self.s.notification_log.items())
        found = [e for k, e in entries if e.status == "open" and (after is None or k > after)]
        return found if limit is None else found[:limit]

    async def mark_mailed(self, notification_ids: Sequence[str], mail_id: str, at: datetime) -> int:
        count = 0
        for notification_id in notification_ids:
            known = self.s.notifications.get(notification_id)
            if known is not None and known.state == "pending":
                self.s.notifications[notification_id] = replace(known, state="mailed", mail_id=mail_id, decided_at=at)
                count += 1
        return count

    async def hold(self, held: Sequence[tuple[str, str]]) -> None:
        for notification_id, reason in held:
            known = self.s.notifications[notification_id]
            if known.state == "pending":
                self.s.notifications[notification_id] = replace(known, held_by=reason)

    async def drop(self, dropped: Sequence[tuple[str, str]], at: datetime) -> None:
        for notification_id, reason in dropped:
            known = self.s.notifications[notification_id]
            if known.state == "pending":
                self.s.notifications[notification_id] = replace(known, state="dropped", held_by=reason, decided_at=at)

    async def record_email(self, group_id: str, keys: Sequence[tuple[str, str]], mail_id: str, at: datetime) -> None:
        group = self.s.notification_groups[group_id]
        self.s.notification_groups[group_id] = replace(group, last_flush_at=at)
        for key in keys:
            if key in self.s.notification_log:
                entry = self.s.notification_log[key]
                self.s.notification_log[key] = replace(entry, last_notified_at=at, last_mail_id=mail_id)

    async def list(self, limit: int = 1000) -> list[Notification]:
        return sorted(self.s.notifications.values(), key=lambda n: (n.created_at, n.notification_id))[:limit]


class MemoryOutbox(MemoryRepository):
    async def add(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            self.s.outbox.setdefault(notice.notice_id, notice)

    async def due(self, now: datetime, limit: int) -> list[Notice]:
        due = [
            n
            for n in self.s.outbox.values()
            if n.sent_at is None and (n.attempts == 0 or (n.next_attempt_at is not None and n.next_attempt_at <= now))
        ]
        return sorted(due, key=lambda n: (n.created_at, n.notice_id))[:limit]

    async def mark_sent(self, notice_id: str, at: datetime, outcomes: Mapping[str, str] | None = None) -> None:
        notice = self.s.outbox[notice_id]
        self.s.outbox[notice_id] = replace(
            notice,
            sent_at=at,
            attempts=notice.attempts + 1,
            last_error=None,
            next_attempt_at=None,
            recipient_outcomes=dict(outcomes) if outcomes is not None else notice.recipient_outcomes,
        )

    async def mark_failed(
        self, notice_id: str, error: str, next_attempt_at: datetime, outcomes: Mapping[str, str] | None = None
    ) -> None:
        notice = self.s.outbox[notice_id]
        self.s.outbox[notice_id] = replace(
            notice,
            attempts=notice.attempts + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
            recipient_outcomes=dict(outcomes) if outcomes is not None else notice.recipient_outcomes,
        )

    async def unsent_since(self, before: datetime, limit: int) -> list[Notice]:
        found = [n for n in self.s.outbox.values() if n.sent_at is None and n.created_at <= before]
        return sorted(found, key=lambda n: (n.created_at, n.notice_id))[:limit]

    async def undeliverable(self, limit: int) -> list[Notice]:
        found = [n for n in self.s.outbox.values() if n.undeliverable]
        return sorted(found, key=lambda n: n.created_at, reverse=True)[:limit]

    async def counts(self) -> dict[str, int]:
        notices = self.s.outbox.values()
        return {
            "sent": sum(1 for n in notices if n.sent_at is not None),
            "pending": sum(1 for n in notices if n.sent_at is None and (n.attempts == 0 or n.next_attempt_at)),
            "failed": sum(1 for n in notices if n.sent_at is None and n.attempts > 0 and not n.next_attempt_at),
        }
