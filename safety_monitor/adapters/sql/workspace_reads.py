"""Owns the SQL queries behind the review workspace's pages: the alert queue, an alert's evidence, a subject's
timeline, the liver peaks of the eDISH plot and the reporting clocks, each read in one snapshot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.alerts import alert_from_row
from safety_monitor.adapters.sql.repositories.base import as_utc
from safety_monitor.domain.alerts import Alert, AlertStatus
from safety_monitor.domain.conditions.deadline import DEFAULT_RELATED, SaeClock
from safety_monitor.domain.rules import Severity
from safety_monitor.service.workspace_views import (
    AeVersionView,
    AlertEvidence,
    DoseEvent,
    FindingView,
    LiverPeak,
    NotificationView,
    QueueFilters,
    QueueRow,
    QueueRows,
    SubjectData,
)

_SEVERITY_RANK = {s.value: n for n, s in enumerate(Severity)}  # critical first
_RELATED = sorted(DEFAULT_RELATED)
# The tests of the eDISH plot (FDA's eDISH: peak ALT and peak total bilirubin, each as a multiple of its ULN).
_ALT, _BILI = "ALT", "BILI"


def _grades(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else json.loads(raw or "[]")
    shown = []
    for item in items:
        if "grade" in item:
            provisional = " (provisional)" if item.get("provisional") else ""
            shown.append(f"{item['term']} G{item['grade']}{provisional}")
        else:
            shown.append(f"{item.get('term', '?')}: not graded ({item.get('reason', '')})")
    return shown


def _finding(row: Any) -> FindingView:
    return FindingView(
        row.msg_id, row.test_code, row.collected_at, row.value, row.unit, row.lln, row.uln, _grades(row.grades)
    )


def _ae(row: Any, current: Any | None = None) -> AeVersionView:
    return AeVersionView(
        msg_id=row.msg_id,
        record_version=row.record_version,
        sent_at=as_utc(row.sent_at),
        verbatim_term=row.aeterm or "",
        preferred_term=row.aedecod or "",
        system_organ_class=row.aebodsys or "",
        investigator_grade=row.aetoxgr,
        serious=row.aeser,
        onset=row.aestdtc,
        end=row.aeendtc,
        outcome=row.aeout,
        causality={"anlotinib": row.aerel_anlotinib, "ici": row.aerel_ici},
        derived_grade=current.derived_grade if current is not None else None,
        derived_term=current.derived_term if current is not None else None,
    )


class SqlWorkspaceReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def database_reachable(self) -> bool:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure to reach the database is "not reachable", reported by /healthz
            return False
        return True

    async def last_review_at(self, reviewer: str) -> datetime | None:
        async with self._engine.connect() as conn:
            c = t.review_actions.c
            value = (await conn.execute(select(func.max(c.at)).where(c.reviewer == reviewer))).scalar()
        return as_utc(value) if value is not None else None

    async def queue(self, filters: QueueFilters, since: datetime | None) -> QueueRows:
        """Counted per severity (an index range each), then only the page's slice of each severity is read, in
        raised order: no sort of every open alert per request."""
        a, s, rv = t.alert.c, t.subject.c, t.review_actions.c

        def reviewed(kind: str) -> Any:
            return exists().where(rv.alert_key == a.alert_key, rv.kind == kind, rv.new_value.is_not(None))

        acknowledged, adjudicated = reviewed("acknowledge"), reviewed("adjudicate")
        where: list[Any] = [a.status == AlertStatus.OPEN.value]
        if filters.rule_id:
            where.append(a.rule_id == filters.rule_id)
        if filters.site_id:
            where.append(
                exists().where(s.study_id == a.study_id, s.subject_id == a.subject_id, s.site_id == filters.site_id)
            )
        if filters.subject_id:
            where.append(a.subject_id == filters.subject_id)
        if filters.severity:
            where.append(a.severity == filters.severity)
        if filters.review_status == "new":
            where.extend([~acknowledged, ~adjudicated])
        elif filters.review_status == "acknowledged":
            where.extend([acknowledged, ~adjudicated])
        elif filters.review_status == "adjudicated":
            where.append(adjudicated)
        elif filters.review_status:
            where.append(literal(False))
        if filters.drug:
            ae = t.adverse_event.c
            column = {"anlotinib": ae.aerel_anlotinib, "ici": ae.aerel_ici}.get(filters.drug)
            if column is None:
                where.append(literal(False))
            else:
                where.append(
                    exists().where(
                        ae.study_id == a.study_id,
                        ae.subject_id == a.subject_id,
                        (literal("AE:") + ae.aespid) == a.subject_ref,
                        func.upper(func.trim(column)).in_(_RELATED),
                    )
                )
        if since is not None:
            ch = t.alert_change.c
            where.append(exists().where(ch.alert_key == a.alert_key, ch.at > since))
        async with self._engine.connect() as conn:
            counts = {
                severity: int(n)
                for severity, n in await conn.execute(
                    select(a.severity, func.count()).where(*where).group_by(a.severity)
                )
            }
            ranked = sorted(counts, key=lambda name: (_SEVERITY_RANK.get(name, len(_SEVERITY_RANK)), name))
            alerts: list[Alert] = []
            skip, wanted = filters.offset, filters.limit
            for severity in ranked:
                if wanted <= 0:
                    break
                if skip >= counts[severity]:
                    skip -= counts[severity]
                    continue
                query = (
                    select(t.alert)
                    .where(*where, a.severity == severity)
                    .order_by(a.raised_at, a.alert_key)
                    .limit(wanted)
                    .offset(skip)
                )
                page = [alert_from_row(row) for row in (await conn.execute(query)).mappings()]
                alerts.extend(page)
                wanted -= len(page)
                skip = 0
            keys = [alert.key for alert in alerts]
            statuses: dict[str, str] = {}
            for row in await conn.execute(
                select(rv.alert_key, rv.kind).where(rv.alert_key.in_(keys), rv.new_value.is_not(None))
            ):
                if row.kind == "adjudicate":
                    statuses[row.alert_key] = "adjudicated"
                elif row.kind == "acknowledge":
                    statuses.setdefault(row.alert_key, "acknowledged")
            pairs = {(alert.study_id, alert.subject_id) for alert in alerts}
            sites = {
                (row.study_id, row.subject_id): row.site_id
                for row in await conn.execute(
                    select(s.study_id, s.subject_id, s.site_id).where(
                        s.subject_id.in_(sorted({subject for _, subject in pairs}))
                    )
                )
            }
        rows = [
            QueueRow(
                alert, sites.get((alert.study_id, alert.subject_id)), statuses.get(alert.key, "new"), alert.updated_at
            )
            for alert in alerts
        ]
        return QueueRows(rows, sum(counts.values()))

    async def clocks(self) -> list[tuple[SaeClock, str | None]]:
        k, ae = t.sae_clock.c, t.adverse_event.c
        query = (
            select(t.sae_clock, ae.aeterm)
            .select_from(
                t.sae_clock.outerjoin(
                    t.adverse_event,
                    and_(ae.study_id == k.study_id, ae.subject_id == k.subject_id, ae.aespid == k.aespid),
                )
            )
            .order_by(k.started_at, k.subject_id, k.aespid)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            (
                SaeClock(
                    study_id=r.study_id,
                    subject_id=r.subject_id,
                    ae_spid=r.aespid,
                    rule_id=r.rule_id,
                    started_at=as_utc(r.started_at),
                    start_msg_id=r.start_msg_id,
                    short_known_at=as_utc(r.short_known_at) if r.short_known_at else None,
                    reminders_sent=r.reminders_sent,
                    overdue_sent=r.overdue_sent,
                    closed_at=as_utc(r.closed_at) if r.closed_at else None,
                    closed_reason=r.closed_reason,
                ),
                r.aeterm,
            )
            for r in rows
        ]

    async def evidence(self, alert: Alert) -> AlertEvidence:
        async with self._engine.connect() as conn:
            ae_versions = await self._ae_versions(conn, alert)
            findings = await self._hit_findings(conn, alert)
            notifications = await self._notifications(conn, alert.key)
            ch = t.alert_change.c
            changes = [
                (as_utc(r.at), r.kind, r.previous_grade, r.grade)
                for r in await conn.execute(
                    select(ch.at, ch.kind, ch.previous_grade, ch.grade)
                    .where(ch.alert_key == alert.key)
                    .order_by(ch.at, ch.notice_id)
                )
            ]
        return AlertEvidence(ae_versions, findings, notifications, changes)

    async def _ae_versions(self, conn: AsyncConnection, alert: Alert) -> list[AeVersionView]:
        if not alert.subject_ref.startswith("AE:"):
            return []
        spid = alert.subject_ref.removeprefix("AE:")
        v, cur = t.adverse_event_version.c, t.adverse_event.c
        key = (alert.study_id, alert.subject_id, spid)
        current = (
            await conn.execute(
                select(t.adverse_event).where(cur.study_id == key[0], cur.subject_id == key[1], cur.aespid == key[2])
            )
        ).first()
        rows = await conn.execute(
            select(t.adverse_event_version)
            .where(v.study_id == key[0], v.subject_id == key[1], v.aespid == key[2])
            .order_by(v.record_version, v.sent_at)
        )
        versions = [_ae(row) for row in rows]
        if current is not None and versions:
            last = _ae(current, current)
            versions[-1] = last if last.msg_id == versions[-1].msg_id else versions[-1]
        return versions

    async def _hit_findings(self, conn: AsyncConnection, alert: Alert) -> list[FindingView]:
        h, f = t.rule_hit.c, t.finding.c
        msg_ids = select(h.msg_id).where(h.alert_key == alert.key).scalar_subquery()
        rows = await conn.execute(select(t.finding).where(f.msg_id.in_(msg_ids)).order_by(f.collected_at, f.test_code))
        return [_finding(row) for row in rows]

    async def _notifications(self, conn: AsyncConnection, alert_key: str) -> list[NotificationView]:
        n, g, o = t.notification.c, t.notification_group.c, t.outbox.c
        query = (
            select(
                n.receiver,
                g.route_id,
                g.group_labels,
                n.kind,
                n.state,
                n.held_by,
                n.created_at,
                n.decided_at,
                o.sent_at,
            )
            .select_from(
                t.notification.outerjoin(t.notification_group, g.group_id == n.group_id).outerjoin(
                    t.outbox, o.notice_id == n.mail_id
                )
            )
            .where(n.alert_key == alert_key)
            .order_by(n.created_at, n.receiver)
        )
        return [
            NotificationView(
                receiver=r.receiver,
                route=r.route_id or "",
                group_labels=", ".join(f"{k}={v}" for k, v in dict(r.group_labels or {}).items()),
                kind=r.kind,
                state=r.state,
                held_by=r.held_by,
                created_at=as_utc(r.created_at),
                decided_at=as_utc(r.decided_at) if r.decided_at else None,
                sent_at=as_utc(r.sent_at) if r.sent_at else None,
            )
            for r in await conn.execute(query)
        ]

    async def subject(self, subject_id: str) -> SubjectData | None:
        s, e, ae, f, a = t.subject.c, t.subject_event.c, t.adverse_event.c, t.finding.c, t.alert.c
        async with self._engine.connect() as conn:
            subject = (await conn.execute(select(t.subject).where(s.subject_id == subject_id).limit(1))).first()
            if subject is None:
                return None
            study = subject.study_id
            events = await conn.execute(
                select(t.subject_event).where(e.study_id == study, e.subject_id == subject_id).order_by(e.event_dtc)
            )
            aes = await conn.execute(
                select(t.adverse_event).where(ae.study_id == study, ae.subject_id == subject_id).order_by(ae.aestdtc)
            )
            findings = await conn.execute(
                select(t.finding)
                .where(f.study_id == study, f.subject_id == subject_id)
                .order_by(f.test_code, f.collected_at)
            )
            alerts = await conn.execute(
                select(t.alert).where(a.study_id == study, a.subject_id == subject_id).order_by(a.raised_at)
            )
            return SubjectData(
                study_id=study,
                subject_id=subject_id,
                site_id=subject.site_id,
                arm=subject.arm,
                first_dose_on=subject.first_dose_on,
                died_on=subject.died_on,
                dose_events=[DoseEvent(r.drug, r.event, r.event_dtc, r.reason) for r in events],
                adverse_events=[_ae(r, r) for r in aes],
                findings=[_finding(r) for r in findings],
                alerts=[alert_from_row(r) for r in alerts.mappings()],
            )

    async def liver_peaks(self) -> list[LiverPeak]:
        f = t.finding.c
        ratio = (f.value / f.uln).label("ratio")
        per_test = (
            select(f.study_id, f.subject_id, f.test_code, func.max(ratio).label("peak"))
            .where(f.test_code.in_([_ALT, _BILI]), f.value.is_not(None), f.uln > 0)
            .group_by(f.study_id, f.subject_id, f.test_code)
            .subquery()
        )
        p = per_test.c
        alt = func.max(case((p.test_code == _ALT, p.peak)))
        bili = func.max(case((p.test_code == _BILI, p.peak)))
        query = (
            select(p.study_id, p.subject_id, alt.label("alt"), bili.label("bili"))
            .group_by(p.study_id, p.subject_id)
            .having(or_(alt.is_not(None), bili.is_not(None)))
            .order_by(p.study_id, p.subject_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [LiverPeak(r.study_id, r.subject_id, float(r.alt), float(r.bili)) for r in rows if r.alt and r.bili]

    async def subject_ids(self, subject_ids: Sequence[str]) -> set[str]:
        s = t.subject.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(s.subject_id).where(s.subject_id.in_(list(subject_ids))))
        return {r.subject_id for r in rows}
