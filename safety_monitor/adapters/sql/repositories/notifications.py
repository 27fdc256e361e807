"""Owns the SQL notification repository: notification groups, notifications and each receiver's alert log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, chunks
from safety_monitor.domain.routing import Timing
from safety_monitor.service.records import (
    AlertNotificationState,
    Notification,
    NotificationGroup,
    PendingGroup,
)


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _notification(row: Any) -> Notification:
    return Notification(
        notification_id=row.notification_id,
        receiver=row.receiver,
        group_id=row.group_id,
        alert_key=row.alert_key,
        kind=row.kind,
        urgent=bool(row.urgent),
        context=dict(row.context),
        created_at=row.created_at,
        state=row.state,
        mail_id=row.mail_id,
        held_by=row.held_by,
        decided_at=row.decided_at,
    )


def _group(row: Any) -> NotificationGroup:
    repeat = row.repeat_interval_s
    return NotificationGroup(
        group_id=row.group_id,
        receiver=row.receiver,
        route_id=row.route_id,
        group_labels=tuple((str(k), str(v)) for k, v in row.group_labels),
        recipients=tuple(row.recipients),
        timing=Timing(
            timedelta(seconds=row.group_wait_s),
            timedelta(seconds=row.group_interval_s),
            None if repeat is None else timedelta(seconds=repeat),
        ),
        last_flush_at=row.last_flush_at,
    )


def _log_entry(row: Any) -> AlertNotificationState:
    return AlertNotificationState(
        receiver=row.receiver,
        alert_key=row.alert_key,
        group_id=row.group_id,
        labels=dict(row.labels),
        status=row.status,
        grade=row.grade,
        last_notified_at=row.last_notified_at,
        last_mail_id=row.last_mail_id,
    )


class SqlNotificationRepository(SqlRepository):
    async def put_groups(self, groups: Sequence[NotificationGroup]) -> None:
        rows = [
            {
                "group_id": g.group_id,
                "receiver": g.receiver,
                "route_id": g.route_id,
                "group_labels": [list(pair) for pair in g.group_labels],
                "recipients": list(g.recipients),
                "group_wait_s": _seconds(g.timing.group_wait),
                "group_interval_s": _seconds(g.timing.group_interval),
                "repeat_interval_s": _seconds(g.timing.repeat_interval),
                "last_flush_at": None,
            }
            for g in {g.group_id: g for g in groups}.values()
        ]
        if not rows:
            return
        statement = self._insert(t.notification_group)
        keep = {"group_id", "last_flush_at"}  # the time of the last email is the flush's, never the pipeline's
        changing = {c.name: statement.excluded[c.name] for c in t.notification_group.columns if c.name not in keep}
        statement = statement.on_conflict_do_update(index_elements=["group_id"], set_=changing)
        await self._write_many(("put_groups",), statement, t.notification_group, rows)

    async def add(self, notifications: Sequence[Notification]) -> None:
        rows = [
            {
                "notification_id": n.notification_id,
                "receiver": n.receiver,
                "group_id": n.group_id,
                "alert_key": n.alert_key,
                "kind": n.kind,
                "urgent": n.urgent,
                "context": n.context,
                "created_at": n.created_at,
                "state": n.state,
                "mail_id": n.mail_id,
                "held_by": n.held_by,
                "decided_at": n.decided_at,
            }
            for n in notifications
        ]
        await self._insert_ignore(t.notification, rows, ["notification_id"])

    async def track(self, states: Sequence[AlertNotificationState]) -> None:
        unique = {(s.receiver, s.alert_key): s for s in states}
        rows = [
            {
                "receiver": s.receiver,
                "alert_key": s.alert_key,
                "group_id": s.group_id,
                "labels": s.labels,
                "status": s.status,
                "grade": s.grade,
                "last_notified_at": None,
                "last_mail_id": None,
            }
            for s in unique.values()
        ]
        if not rows:
            return
        statement = self._insert(t.notification_log)
        changing = {name: statement.excluded[name] for name in ("group_id", "labels", "status", "grade")}
        statement = statement.on_conflict_do_update(index_elements=["receiver", "alert_key"], set_=changing)
        await self._write_many(("track",), statement, t.notification_log, rows)

    async def pending(self, group_ids: Iterable[str] | None = None) -> list[Notification]:
        c = t.notification.c
        if group_ids is None:
            query = select(t.notification).where(c.state == "pending").order_by(c.created_at, c.notification_id)
            return [_notification(row) for row in await self.conn.execute(query)]
        found: list[Notification] = []
        for chunk in chunks(sorted(set(group_ids))):
            # Through the index on group_id: the state is compared as an expression for the reason given in
            # mark_mailed (the index on state would read every pending notification for each page of groups).
            query = select(t.notification).where(c.group_id.in_(chunk), (c.state + "") == "pending")
            found.extend(_notification(row) for row in await self.conn.execute(query))
        return sorted(found, key=lambda n: (n.created_at, n.notification_id))

    async def pending_groups(self) -> list[PendingGroup]:
        c = t.notification.c
        query = (
            select(c.group_id, func.min(c.created_at), func.max(case((c.urgent, 1), else_=0)), func.count())
            .where(c.state == "pending")
            .group_by(c.group_id)
        )
        rows = (await self.conn.execute(query)).all()
        return [PendingGroup(str(g), earliest, bool(urgent), int(n)) for g, earliest, urgent, n in rows]

    async def groups(self, group_ids: Iterable[str]) -> dict[str, NotificationGroup]:
        found: dict[str, NotificationGroup] = {}
        for chunk in chunks(sorted(set(group_ids))):
            result = await self.conn.execute(
                select(t.notification_group).where(t.notification_group.c.group_id.in_(chunk))
            )
            found.update({row.group_id: _group(row) for row in result})
        return found

    async def log(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AlertNotificationState]:
        wanted = set(keys)
        found: dict[tuple[str, str], AlertNotificationState] = {}
        c = t.notification_log.c
        for chunk in chunks(sorted({key for _, key in wanted})):
            for row in await self.conn.execute(select(t.notification_log).where(c.alert_key.in_(chunk))):
                if (row.receiver, row.alert_key) in wanted:
                    found[(row.receiver, row.alert_key)] = _log_entry(row)
        return found

    async def open_alerts(
        self, after: tuple[str, str] | None = None, limit: int | None = None
    ) -> list[AlertNotificationState]:
        c = t.notification_log.c
        query = select(t.notification_log).where(c.status == "open").order_by(c.receiver, c.alert_key)
        if after is not None:  # keyset paging on the primary key (receiver, alert_key)
            receiver, alert_key = after
            query = query.where(or_(c.receiver > receiver, and_(c.receiver == receiver, c.alert_key > alert_key)))
        if limit is not None:
            query = query.limit(limit)
        return [_log_entry(row) for row in await self.conn.execute(query)]

    async def mark_mailed(self, notification_ids: Sequence[str], mail_id: str, at: datetime) -> int:
        c = t.notification.c
        count = 0
        for chunk in chunks(list(notification_ids)):
            # Conditional: a concurrent flush that took these first leaves nothing to take (PostgreSQL re-checks
            # the WHERE clause after waiting for its lock), and the caller then rolls back. The state is compared
            # as an expression (`state || ''`) so that no planner takes the rows through the index on state:
            # SQLite, without statistics, preferred it to the primary key and read every pending notification
            # for each group emailed (22 ms a statement at 2,500 pending: 20 s of a 36 s replay of 100,000
            # messages).
            result = await self.conn.execute(
                update(t.notification)
                .where(c.notification_id.in_(chunk), (c.state + "") == "pending")
                .values(state="mailed", mail_id=mail_id, decided_at=at)
            )
            count += int(result.rowcount)
        return count

    async def hold(self, held: Sequence[tuple[str, str]]) -> None:
        if not held:
            return
        c = t.notification.c
        statement = (
            update(t.notification)
            .where(c.notification_id == bindparam("b_id"), c.state == "pending")
            .values(held_by=bindparam("b_reason"))
        )
        await self.conn.execute(statement, [{"b_id": i, "b_reason": reason} for i, reason in held])

    async def drop(self, dropped: Sequence[tuple[str, str]], at: datetime) -> None:
        if not dropped:
            return
        c = t.notification.c
        statement = (
            update(t.notification)
            .where(c.notification_id == bindparam("b_id"), c.state == "pending")
            .values(state="dropped", held_by=bindparam("b_reason"), decided_at=bindparam("b_at"))
        )
        await self.conn.execute(statement, [{"b_id": i, "b_reason": reason, "b_at": at} for i, reason in dropped])

    async def record_email(self, group_id: str, keys: Sequence[tuple[str, str]], mail_id: str, at: datetime) -> None:
        await self.conn.execute(
            update(t.notification_group).where(t.notification_group.c.group_id == group_id).values(last_flush_at=at)
        )
        if not keys:
            return
        c = t.notification_log.c
        statement = (
            update(t.notification_log)
            .where(c.receiver == bindparam("b_receiver"), c.alert_key == bindparam("b_alert_key"))
            .values(last_notified_at=bindparam("b_at"), last_mail_id=bindparam("b_mail_id"))
        )
        rows = [
            {"b_receiver": receiver, "b_alert_key": alert_key, "b_at": at, "b_mail_id": mail_id}
            for receiver, alert_key in sorted(set(keys))
        ]
        await self.conn.execute(statement, rows)  # one executemany: a statement per row was a round trip each

    async def list(self, limit: int = 1000) -> list[Notification]:
        c = t.notification.c
        query = select(t.notification).order_by(c.created_at, c.notification_id).limit(limit)
        return [_notification(row) for row in await self.conn.execute(query)]
