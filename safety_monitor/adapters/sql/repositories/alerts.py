"""Owns the SQL alert repository: the alerts, their changes, and the alert row mapping the workspace reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, as_utc, chunks
from safety_monitor.domain.alerts import Alert, AlertChange, AlertStatus, ChangeKind


def _alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "alert_key": alert.key,
        "alert_id": alert.id,
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
        "raised_at": alert.raised_at,
        "updated_at": alert.updated_at,
        "last_msg_id": alert.last_msg_id,
        "detail": alert.detail,
        "ruleset_hash": alert.ruleset_hash,
        "ctcae_version": alert.ctcae_version,
    }


def alert_from_row(row: Any) -> Alert:
    return Alert(
        key=row["alert_key"],
        rule_id=row["rule_id"],
        rule_title=row["rule_title"],
        severity=row["severity"],
        action=row["action"],
        study_id=row["study_id"],
        subject_id=row["subject_id"],
        subject_ref=row["subject_ref"],
        term=row["term"],
        observed_on=row["observed_on"],
        grade=row["grade"],
        status=AlertStatus(row["status"]),
        raised_at=as_utc(row["raised_at"]),
        updated_at=as_utc(row["updated_at"]),
        last_msg_id=row["last_msg_id"],
        detail=row["detail"],
        ruleset_hash=row["ruleset_hash"],
        ctcae_version=row["ctcae_version"],
    )


class SqlAlertRepository(SqlRepository):
    async def get(self, keys: Iterable[str]) -> dict[str, Alert]:
        found: dict[str, Alert] = {}
        for chunk in chunks(list(keys)):
            result = await self.conn.execute(select(t.alert).where(t.alert.c.alert_key.in_(chunk)))
            for row in result.mappings():
                found[row["alert_key"]] = alert_from_row(row)
        return found

    async def by_id(self, alert_id: str) -> Alert | None:
        row = (await self.conn.execute(select(t.alert).where(t.alert.c.alert_id == alert_id))).mappings().first()
        return alert_from_row(row) if row is not None else None

    async def put(self, alerts: Sequence[Alert]) -> None:
        await self._upsert(t.alert, [_alert_row(a) for a in alerts], ["alert_key"])

    async def add_changes(self, changes: Sequence[AlertChange]) -> None:
        rows = []
        for change in changes:
            snapshot = _alert_row(change.alert)
            snapshot["raised_at"] = change.alert.raised_at.isoformat()
            snapshot["updated_at"] = change.alert.updated_at.isoformat()
            rows.append(
                {
                    "notice_id": change.notice_id,
                    "alert_key": change.alert.key,
                    "kind": change.kind.value,
                    "previous_grade": change.previous_grade,
                    "grade": change.alert.grade,
                    "msg_id": change.msg_id,
                    "at": change.at,
                    "snapshot": snapshot,
                }
            )
        await self._insert_ignore(t.alert_change, rows, ["notice_id"])

    async def changes_since(self, since: datetime | None) -> list[AlertChange]:
        query = select(t.alert_change).order_by(t.alert_change.c.at, t.alert_change.c.notice_id)
        if since is not None:
            query = query.where(t.alert_change.c.at > since)
        result = await self.conn.execute(query)
        return [
            AlertChange(alert_from_row(row.snapshot), ChangeKind(row.kind), row.previous_grade, row.msg_id, row.at)
            for row in result
        ]

    async def status_counts(self) -> dict[tuple[str, str], int]:
        c = t.alert.c
        result = await self.conn.execute(select(c.rule_id, c.status, func.count()).group_by(c.rule_id, c.status))
        return {(rule_id, status): int(count) for rule_id, status, count in result}

    async def count_by_rule(self) -> dict[str, int]:
        result = await self.conn.execute(select(t.alert.c.rule_id, func.count()).group_by(t.alert.c.rule_id))
        return {rule_id: int(count) for rule_id, count in result}

    async def open(self) -> list[Alert]:
        c = t.alert.c
        query = select(t.alert).where(c.status == AlertStatus.OPEN.value).order_by(c.raised_at, c.alert_key)
        return [alert_from_row(row) for row in (await self.conn.execute(query)).mappings()]
