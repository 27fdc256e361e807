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


_c = t.subject.c
# The columns a subject is read from, in the order `_subject` unpacks them (by position: a row's look-up by name
# costs more than building the subject).
_READ = (
    _c.study_id,
    _c.subject_id,
    _c.site_id,
    _c.arm,
    _c.enrolled_on,
    _c.first_dose_on,
    _c.discontinued_on,
    _c.died_on,
)


def _subject(row: Sequence[Any]) -> Subject:
    study_id, subject_id, site_id, arm, enrolled_on, first_dose_on, discontinued_on, died_on = row
    return Subject(
        study_id=study_id,
        subject_id=subject_id,
        site_id=site_id,
        arm=arm,
        enrolled_on=parse_date(enrolled_on),
        first_dose_on=parse_date(first_dose_on),
        discontinued_on=parse_date(discontinued_on),
        died_on=parse_date(died_on),
    )


def _by_key(rows: Iterable[Sequence[Any]]) -> dict[SubjectKey, Subject]:
    found: dict[SubjectKey, Subject] = {}
    for row in rows:
        subject = _subject(row)
        found[(subject.study_id, subject.subject_id)] = subject
    return found


class SqlSubjectRepository(SqlRepository):
    async def get(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, Subject]:
        return _by_key(await self._select_by_keys(t.subject, ("study_id", "subject_id"), keys, selected=_READ))

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
        return _by_key(await self.conn.execute(select(*_READ).where(_c.first_dose_on.is_not(None))))

    async def all(self) -> dict[SubjectKey, Subject]:
        return _by_key(await self.conn.execute(select(*_READ)))

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
