"""Owns the SQL subject repository: subjects, their lifecycle events and the safety population."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, date_text, parse_date
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.messages import (
    SubjectEvent,
    SubjectEventKind,
)
from safety_monitor.domain.subjects import Subject, SubjectEventFact
from safety_monitor.service.ports import SubjectKey


def _subject_row(subject: Subject) -> dict[str, Any]:
    return {
        "study_id": subject.study_id,
        "subject_id": subject.subject_id,
        "site_id": subject.site_id,
        "arm": subject.arm,
        "enrolled_on": date_text(subject.enrolled_on),
        "first_dose_on": date_text(subject.first_dose_on),
        "discontinued_on": date_text(subject.discontinued_on),
        "died_on": date_text(subject.died_on),
    }


def _subject(row: Any) -> Subject:
    return Subject(
        study_id=row.study_id,
        subject_id=row.subject_id,
        site_id=row.site_id,
        arm=row.arm,
        enrolled_on=parse_date(row.enrolled_on),
        first_dose_on=parse_date(row.first_dose_on),
        discontinued_on=parse_date(row.discontinued_on),
        died_on=parse_date(row.died_on),
    )


class SqlSubjectRepository(SqlRepository):
    async def get(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, Subject]:
        rows = await self._select_by_keys(t.subject, ("study_id", "subject_id"), keys)
        return {(row.study_id, row.subject_id): _subject(row) for row in rows}

    async def put(self, subjects: Sequence[Subject]) -> None:
        await self._upsert(t.subject, [_subject_row(s) for s in subjects], ["study_id", "subject_id"])

    async def add_events(self, events: Sequence[SubjectEvent]) -> None:
        rows = [
            {
                "msg_id": e.envelope.msg_id,
                "study_id": e.envelope.study_id,
                "subject_id": e.envelope.subject_id,
                "event": e.event.value,
                "event_dtc": e.event_date.text,
                "drug": e.drug,
                "reason": e.reason,
            }
            for e in events
        ]
        await self._insert_ignore(t.subject_event, rows, ["msg_id"])

    async def safety_population(self) -> dict[SubjectKey, Subject]:
        result = await self.conn.execute(select(t.subject).where(t.subject.c.first_dose_on.is_not(None)))
        return {(row.study_id, row.subject_id): _subject(row) for row in result}

    async def all(self) -> dict[SubjectKey, Subject]:
        result = await self.conn.execute(select(t.subject))
        return {(row.study_id, row.subject_id): _subject(row) for row in result}

    async def events(self) -> list[SubjectEventFact]:
        c = t.subject_event.c
        result = await self.conn.execute(
            select(c.study_id, c.subject_id, c.event, c.event_dtc, c.drug, c.reason).order_by(c.msg_id)
        )
        return [
            SubjectEventFact(
                row.study_id,
                row.subject_id,
                _EVENT_KINDS[row.event],
                PartialDate.parse(row.event_dtc),
                row.drug,
                row.reason,
            )
            for row in result
        ]


# Enum lookups by value, without Enum.__call__ per row (thousands of rows per report).
_EVENT_KINDS = {kind.value: kind for kind in SubjectEventKind}
