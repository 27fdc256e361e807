"""Owns the SQL adverse event repository: each event's current record, its versions and the incidence facts."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, aggregated_utc, date_text, parse_date
from safety_monitor.domain.derived_grades import AeSpan
from safety_monitor.domain.incidence import AeFact, SourcedAeFact
from safety_monitor.domain.messages import (
    AdverseEvent,
    Envelope,
    MessageType,
)
from safety_monitor.service.ports import AeKey, SubjectKey


def _ae_row(event: AdverseEvent) -> dict[str, Any]:
    env = event.envelope
    return {
        "msg_id": env.msg_id,
        "study_id": env.study_id,
        "subject_id": env.subject_id,
        "aespid": event.ae_spid,
        "site_id": env.site_id,
        "record_version": env.record_version,
        "sent_at": env.sent_at,
        "aeterm": event.verbatim_term,
        "aedecod": event.preferred_term,
        "aebodsys": event.system_organ_class,
        "aetoxgr": event.investigator_grade,
        "aeser": event.serious,
        "aesdth": event.death,
        "aeslife": event.life_threatening,
        "aeshosp": event.hospitalisation,
        "aestdtc": date_text(event.onset_date),
        "aeendtc": date_text(event.end_date),
        "aeout": event.outcome,
        "aerel_anlotinib": event.causality_anlotinib,
        "aerel_ici": event.causality_ici,
        "aeacn_anlotinib": event.action_anlotinib,
        "aeacn_ici": event.action_ici,
        "aeirae": event.immune_related,
    }


def _ae(row: Any) -> AdverseEvent:
    return AdverseEvent(
        envelope=Envelope(
            msg_id=row.msg_id,
            msg_type=MessageType.AE,
            sent_at=row.sent_at,
            site_id=row.site_id,
            record_version=row.record_version,
            study_id=row.study_id,
            subject_id=row.subject_id,
        ),
        ae_spid=row.aespid,
        verbatim_term=row.aeterm,
        preferred_term=row.aedecod,
        system_organ_class=row.aebodsys,
        investigator_grade=row.aetoxgr,
        serious=row.aeser,
        death=row.aesdth,
        life_threatening=row.aeslife,
        hospitalisation=row.aeshosp,
        onset_date=parse_date(row.aestdtc),
        end_date=parse_date(row.aeendtc),
        outcome=row.aeout,
        causality_anlotinib=row.aerel_anlotinib,
        causality_ici=row.aerel_ici,
        action_anlotinib=row.aeacn_anlotinib,
        action_ici=row.aeacn_ici,
        immune_related=row.aeirae,
        derived_grade=row._mapping.get("derived_grade"),
        derived_term=row._mapping.get("derived_term"),
    )


def _current_ae_row(event: AdverseEvent) -> dict[str, Any]:
    return _ae_row(event) | {"derived_grade": event.derived_grade, "derived_term": event.derived_term}


class SqlAdverseEventRepository(SqlRepository):
    async def current(self, keys: Iterable[AeKey]) -> dict[AeKey, AdverseEvent]:
        rows = await self._select_by_keys(t.adverse_event, ("study_id", "subject_id", "aespid"), keys)
        return {(row.study_id, row.subject_id, row.aespid): _ae(row) for row in rows}

    async def put_current(self, events: Sequence[AdverseEvent]) -> None:
        # One row per record per statement (PostgreSQL refuses an upsert touching a row twice): the last wins.
        rows = {e.record_key: _current_ae_row(e) for e in events}
        await self._upsert(t.adverse_event, list(rows.values()), ["study_id", "subject_id", "aespid"])

    async def add_versions(self, events: Sequence[AdverseEvent]) -> None:
        await self._insert_ignore(t.adverse_event_version, [_ae_row(e) for e in events], ["msg_id"])

    async def facts(self, pts: Collection[str] | None = None) -> list[AeFact]:
        c = t.adverse_event.c
        query = select(c.study_id, c.subject_id, c.aebodsys, c.aedecod, c.aetoxgr, c.aestdtc)
        if pts is not None:
            query = query.where(func.lower(c.aedecod).in_(sorted({p.casefold() for p in pts})))
        result = await self.conn.execute(query)
        return [
            AeFact(r.study_id, r.subject_id, r.aebodsys, r.aedecod, r.aetoxgr or 0, parse_date(r.aestdtc))
            for r in result
        ]

    async def sourced_facts(self, pts: Collection[str], grade_at_least: int = 0) -> list[SourcedAeFact]:
        c = t.adverse_event.c
        query = select(
            c.study_id, c.subject_id, c.aespid, c.msg_id, c.sent_at, c.aebodsys, c.aedecod, c.aetoxgr, c.aestdtc
        ).where(func.lower(c.aedecod).in_(sorted({p.casefold() for p in pts})))
        if grade_at_least > 0:  # the fact's grade is 0 when the investigator gave none
            query = query.where(func.coalesce(c.aetoxgr, 0) >= grade_at_least)
        # Unpacked by position: a row's look-up by name costs more than building the fact (every qualifying AE of
        # the trial is read in each batch that touches the cohort rules' terms).
        return [
            SourcedAeFact(
                AeFact(study_id, subject_id, aebodsys, aedecod, aetoxgr or 0, parse_date(aestdtc)),
                aespid,
                msg_id,
                sent_at,
                aetoxgr,
            )
            for study_id, subject_id, aespid, msg_id, sent_at, aebodsys, aedecod, aetoxgr, aestdtc in (
                await self.conn.execute(query)
            )
        ]

    async def for_subjects(
        self, subjects: Iterable[SubjectKey], pts: Collection[str] | None = None
    ) -> list[AdverseEvent]:
        c = t.adverse_event.c
        # `lower(aedecod || '')`, not `lower(aedecod)`: SQLite has no statistics and, offered the folded-PT index,
        # took it over the primary key, reading every AE of those PTs in the trial for each look-up (75 ms for 64
        # subjects of a 400,000-message trial, 17 ms through the key).
        folded = func.lower(c.aedecod.concat(""))
        where = [folded.in_(sorted({p.casefold() for p in pts}))] if pts is not None else []
        rows = await self._select_by_keys(t.adverse_event, ("study_id", "subject_id"), subjects, where)
        return [_ae(row) for row in rows]

    async def spans(self, subjects: Iterable[SubjectKey], pts: Collection[str]) -> list[AeSpan]:
        c = t.adverse_event.c
        folded = func.lower(c.aedecod.concat(""))  # the primary key, not the folded-PT index: see for_subjects
        rows = await self._select_by_keys(
            t.adverse_event,
            ("study_id", "subject_id"),
            subjects,
            [folded.in_(sorted({p.casefold() for p in pts}))],
            selected=(
                c.study_id,
                c.subject_id,
                c.aespid,
                c.aedecod,
                c.aestdtc,
                c.aeendtc,
                c.derived_grade,
                c.derived_term,
            ),
        )
        return [
            AeSpan(
                (r.study_id, r.subject_id, r.aespid),
                r.aedecod,
                parse_date(r.aestdtc),
                parse_date(r.aeendtc),
                r.derived_grade,
                r.derived_term,
            )
            for r in rows
        ]

    async def with_derived_grade(self) -> list[AdverseEvent]:
        c = t.adverse_event.c
        query = select(t.adverse_event).where(c.derived_grade.is_not(None)).order_by(c.study_id, c.subject_id, c.aespid)
        return [_ae(row) for row in await self.conn.execute(query)]

    async def first_serious_sent(self) -> dict[AeKey, datetime]:
        c = t.adverse_event_version.c
        query = (
            select(c.study_id, c.subject_id, c.aespid, func.min(c.sent_at))
            .where(c.aeser == "Y")
            .group_by(c.study_id, c.subject_id, c.aespid)
        )
        return {(r[0], r[1], r[2]): aggregated_utc(r[3]) for r in await self.conn.execute(query)}

    async def unknown_subject_count(self) -> int:
        ae, subject = t.adverse_event.c, t.subject.c
        known = select(subject.subject_id).where(
            and_(subject.study_id == ae.study_id, subject.subject_id == ae.subject_id)
        )
        result = await self.conn.execute(select(func.count()).select_from(t.adverse_event).where(~known.exists()))
        return int(result.scalar_one())
