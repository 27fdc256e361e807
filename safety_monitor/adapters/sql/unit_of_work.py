"""Owns the SQL unit of work: one transaction over every repository, with batch reads and idempotent writes."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.workspace_repositories import SqlApiTokens, SqlAuditLog, SqlSessions, SqlUsers
from safety_monitor.domain.access import Role
from safety_monitor.domain.alerts import Alert, AlertChange, AlertStatus, ChangeKind
from safety_monitor.domain.baselines import TestKey
from safety_monitor.domain.conditions.deadline import ClockKey, SaeClock
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.grading import Graded, GradeResult, NotGradable
from safety_monitor.domain.incidence import AeFact
from safety_monitor.domain.messages import (
    AdverseEvent,
    Envelope,
    Finding,
    MessageType,
    OverallResponse,
    SubjectEvent,
    SubjectEventKind,
    TumourResponse,
)
from safety_monitor.domain.review import ActionKind, ClockEffect, ReviewAction
from safety_monitor.domain.routing import Timing
from safety_monitor.domain.rules import RuleHit
from safety_monitor.domain.subjects import Subject, SubjectEventFact
from safety_monitor.service.ports import AeKey, DrawKey, HitKey, LeaseState, ResponseKey, SubjectKey
from safety_monitor.service.records import (
    AlertNotificationState,
    DeadLetter,
    InboxEntry,
    Notice,
    Notification,
    NotificationGroup,
    Publication,
    StoredFinding,
)

_CHUNK = 500  # keys per IN (...) lookup: well under SQLite's bound-parameter limit


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# SQLite only: how a write statement of a given shape goes to the driver: its SQL text, the parameter names in
# order and each one's bind processing (see _Sql._write_many).
_DriverForm = tuple[str, Callable[[dict[str, Any]], Any], tuple[tuple[int, Callable[[Any], Any]], ...]]
_DRIVER_FORMS: dict[tuple[Any, ...], _DriverForm | None] = {}


def _date(value: PartialDate | None) -> str | None:
    return value.text if value is not None else None


def _parse(value: str | None) -> PartialDate | None:
    return PartialDate.parse(value) if value else None


class _Sql:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def conn(self) -> AsyncConnection:
        return self._uow.connection

    def _insert(self, table: Table) -> Any:
        """A dialect-specific INSERT that supports ON CONFLICT (there is no generic upsert in SQLAlchemy)."""
        if self.conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _select_by_keys(
        self, table: Table, columns: tuple[str, ...], keys: Iterable[tuple[Any, ...]], where: Sequence[Any] = ()
    ) -> list[Any]:
        """Rows whose `columns` equal one of `keys`.

        Each column is filtered with its own IN list, which an index on the leading columns serves on both
        databases (SQLite does not use an index for a row-value `(a, b) IN (VALUES ...)`, and that scan grows
        with the table); the exact keys are then kept here.
        """
        wanted = set(keys)
        rows: list[Any] = []
        for chunk in _chunks(sorted(wanted)):
            conditions = [table.c[name].in_(sorted({key[i] for key in chunk})) for i, name in enumerate(columns)]
            result = await self.conn.execute(select(table).where(*conditions, *where))
            rows.extend(row for row in result if tuple(getattr(row, name) for name in columns) in wanted)
        return rows

    async def _insert_ignore(self, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
        if rows:
            statement = self._insert(table).on_conflict_do_nothing(index_elements=keys)
            await self._write_many(("insert_ignore", *keys), statement, table, rows)

    async def _upsert(self, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
        if not rows:
            return
        statement = self._insert(table)
        changing = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        statement = statement.on_conflict_do_update(index_elements=keys, set_=changing)
        await self._write_many(("upsert", *keys), statement, table, rows)

    async def _write_many(
        self, shape: tuple[str, ...], statement: Any, table: Table, rows: list[dict[str, Any]]
    ) -> None:
        """Execute a write of many rows whose statement depends only on `shape`, the table and the rows' keys.

        On SQLite the rows go to the driver as tuples converted here by each column's own bind processing, so the
        stored values are those SQLAlchemy would store, without its generic per-row parameter handling, which
        costs as much as SQLite's own work on the wide rows of a batch (bench/bench_replay.py, embedded runtime).
        """
        dialect = self.conn.dialect
        if dialect.name != "sqlite":
            await self.conn.execute(statement, rows)
            return
        columns = tuple(rows[0])
        key = (dialect.paramstyle, table.name, *shape, columns)
        if key not in _DRIVER_FORMS:
            compiled = statement.compile(dialect=dialect, column_keys=list(columns))
            names = tuple(compiled.positiontup or ())
            _DRIVER_FORMS[key] = None  # bound values other than the rows' columns: SQLAlchemy binds them
            if dialect.paramstyle == "qmark" and len(names) > 1 and sorted(names) == sorted(columns):
                processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
                processed = tuple((i, p) for i, p in enumerate(processors) if p is not None)
                _DRIVER_FORMS[key] = (str(compiled), itemgetter(*names), processed)
        form = _DRIVER_FORMS[key]
        if form is None:
            await self.conn.execute(statement, rows)
            return
        sql, values_of, processed = form
        # A value object shared by many rows (the batch's time, the same grades) is converted once.
        converted: dict[int, Any] = {}
        parameters = []
        for row in rows:
            values = list(values_of(row))
            for i, process in processed:
                value = values[i]
                if id(value) not in converted:  # the rows keep every value alive: ids are not reused meanwhile
                    converted[id(value)] = process(value)
                values[i] = converted[id(value)]
            parameters.append(tuple(values))
        await self.conn.exec_driver_sql(sql, parameters)


class _Inbox(_Sql):
    async def content_hashes(self, msg_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(list(msg_ids)):
            result = await self.conn.execute(
                select(t.inbox.c.msg_id, t.inbox.c.content_hash).where(t.inbox.c.msg_id.in_(chunk))
            )
            found.update({row.msg_id: row.content_hash for row in result})
        return found

    async def payloads(self, msg_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(list(msg_ids)):
            result = await self.conn.execute(
                select(t.inbox.c.msg_id, t.inbox.c.payload).where(t.inbox.c.msg_id.in_(chunk))
            )
            found.update({row.msg_id: row.payload for row in result})
        return found

    async def add(self, entries: Sequence[InboxEntry]) -> None:
        # A plain INSERT: a concurrent worker that took the same msg_id makes this transaction fail and the
        # batch is redelivered, where it is recognised as a duplicate. Never silently "do nothing" here.
        if entries:
            await self._write_many(
                ("insert",),
                insert(t.inbox),
                t.inbox,
                [
                    {
                        "msg_id": e.msg_id,
                        "msg_type": e.msg_type,
                        "content_hash": e.content_hash,
                        "received_at": e.received_at,
                        "origin": e.origin,
                        "outcome": e.outcome,
                        "payload": e.payload,
                    }
                    for e in entries
                ],
            )


class _DeadLetters(_Sql):
    async def add(self, letters: Sequence[DeadLetter]) -> None:
        # Same payload twice in one batch: fold first (PostgreSQL refuses one upsert touching a row twice).
        folded: dict[str, tuple[DeadLetter, int]] = {}
        for letter in letters:
            first, count = folded.get(letter.payload_hash, (letter, 0))
            folded[letter.payload_hash] = (first, count + 1)
        if not folded:
            return
        statement = self._insert(t.dead_letter)
        statement = statement.on_conflict_do_update(
            index_elements=["payload_hash"],
            set_={"times_received": t.dead_letter.c.times_received + statement.excluded.times_received},
        )
        await self.conn.execute(
            statement,
            [
                {
                    "payload_hash": letter.payload_hash,
                    "msg_id": letter.msg_id,
                    "reason": letter.reason,
                    "origin": letter.origin,
                    "payload": letter.payload,
                    "first_received_at": letter.received_at,
                    "times_received": count,
                }
                for letter, count in folded.values()
            ],
        )

    async def list(self, limit: int = 100) -> list[tuple[DeadLetter, int]]:
        result = await self.conn.execute(select(t.dead_letter))
        letters = [
            (DeadLetter(r.payload_hash, r.msg_id, r.reason, r.origin, r.payload, r.first_received_at), r.times_received)
            for r in result
        ]
        return sorted(letters, key=lambda pair: pair[0].listing_order())[:limit]


def _subject_row(subject: Subject) -> dict[str, Any]:
    return {
        "study_id": subject.study_id,
        "subject_id": subject.subject_id,
        "site_id": subject.site_id,
        "arm": subject.arm,
        "enrolled_on": _date(subject.enrolled_on),
        "first_dose_on": _date(subject.first_dose_on),
        "discontinued_on": _date(subject.discontinued_on),
        "died_on": _date(subject.died_on),
    }


def _subject(row: Any) -> Subject:
    return Subject(
        study_id=row.study_id,
        subject_id=row.subject_id,
        site_id=row.site_id,
        arm=row.arm,
        enrolled_on=_parse(row.enrolled_on),
        first_dose_on=_parse(row.first_dose_on),
        discontinued_on=_parse(row.discontinued_on),
        died_on=_parse(row.died_on),
    )


class _Subjects(_Sql):
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
_RESPONSES = {response.value: response for response in OverallResponse}


def _response_row(response: TumourResponse) -> dict[str, Any]:
    env = response.envelope
    return {
        "msg_id": env.msg_id,
        "study_id": env.study_id,
        "subject_id": env.subject_id,
        "site_id": env.site_id,
        "sent_at": env.sent_at,
        "record_version": env.record_version,
        "rstestcd": response.test_code,
        "rsstresc": response.response.value,
        "rsdtc": response.assessed_on.text,
        "visit": response.visit,
    }


def _response(row: Any) -> TumourResponse:
    envelope = Envelope(
        row.msg_id, MessageType.RS, row.sent_at, row.site_id, row.record_version, row.study_id, row.subject_id
    )
    response = _RESPONSES[row.rsstresc]
    return TumourResponse(envelope, row.rstestcd, response, PartialDate.parse(row.rsdtc), row.visit)


class _TumourResponses(_Sql):
    _KEY = ("study_id", "subject_id", "rstestcd", "rsdtc")

    async def latest_versions(self, keys: Iterable[ResponseKey]) -> dict[ResponseKey, int]:
        found: dict[ResponseKey, int] = {}
        for row in await self._select_by_keys(t.tumour_response, self._KEY, keys):
            key = (row.study_id, row.subject_id, row.rstestcd, row.rsdtc)
            found[key] = max(found.get(key, 0), row.record_version)
        return found

    async def add(self, responses: Sequence[TumourResponse]) -> None:
        await self._insert_ignore(t.tumour_response, [_response_row(r) for r in responses], ["msg_id"])

    async def current(self) -> list[TumourResponse]:
        c = t.tumour_response.c
        result = await self.conn.execute(
            select(t.tumour_response).order_by(c.study_id, c.subject_id, c.rstestcd, c.rsdtc, c.record_version)
        )
        best: dict[ResponseKey, TumourResponse] = {}
        for row in result:  # ascending versions: the last one of a record wins
            best[(row.study_id, row.subject_id, row.rstestcd, row.rsdtc)] = _response(row)
        return list(best.values())


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
        "aestdtc": _date(event.onset_date),
        "aeendtc": _date(event.end_date),
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
        onset_date=_parse(row.aestdtc),
        end_date=_parse(row.aeendtc),
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


class _AdverseEvents(_Sql):
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
            AeFact(r.study_id, r.subject_id, r.aebodsys, r.aedecod, r.aetoxgr or 0, _parse(r.aestdtc)) for r in result
        ]

    async def for_subjects(
        self, subjects: Iterable[SubjectKey], pts: Collection[str] | None = None
    ) -> list[AdverseEvent]:
        c = t.adverse_event.c
        where = [func.lower(c.aedecod).in_(sorted({p.casefold() for p in pts}))] if pts is not None else []
        rows = await self._select_by_keys(t.adverse_event, ("study_id", "subject_id"), subjects, where)
        return [_ae(row) for row in rows]

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
        return {(r[0], r[1], r[2]): _aggregated_utc(r[3]) for r in await self.conn.execute(query)}

    async def unknown_subject_count(self) -> int:
        ae, subject = t.adverse_event.c, t.subject.c
        known = select(subject.subject_id).where(
            and_(subject.study_id == ae.study_id, subject.subject_id == ae.subject_id)
        )
        result = await self.conn.execute(select(func.count()).select_from(t.adverse_event).where(~known.exists()))
        return int(result.scalar_one())


def _grade_json(result: GradeResult) -> dict[str, Any]:
    if isinstance(result, Graded):
        data: dict[str, Any] = {
            "term": result.term,
            "grade": result.grade,
            "provisional": result.provisional,
            "note": result.note,
        }
        if result.caution:
            data["caution"] = result.caution
        return data
    return {"term": result.term, "reason": result.reason}


@lru_cache(maxsize=4096)
def _grades_json(grades: tuple[GradeResult, ...]) -> list[dict[str, Any]]:
    """The JSON of a finding's grades; the same grades (most results) give the same object, encoded once per write
    (_Sql._write_many). Read only."""
    return [_grade_json(g) for g in grades]


def _graded(data: dict[str, Any], version: str) -> GradeResult:
    if "reason" in data:
        return NotGradable(data["term"], data["reason"], version)
    return Graded(
        data["term"],
        data["grade"],
        version,
        data.get("provisional", False),
        data.get("note", ""),
        data.get("caution", ""),
    )


def _finding_row(stored: StoredFinding) -> dict[str, Any]:
    f = stored.finding
    env = f.envelope
    return {
        "msg_id": env.msg_id,
        "domain": env.msg_type.value,
        "study_id": env.study_id,
        "subject_id": env.subject_id,
        "site_id": env.site_id,
        "sent_at": env.sent_at,
        "record_version": env.record_version,
        "test_code": f.test_code,
        "value": f.value,
        "unit": f.unit,
        "lln": f.lln,
        "uln": f.uln,
        "normal_range_indicator": f.normal_range_indicator,
        "baseline_flag": "Y" if f.baseline_flag else None,
        "collected_at": f.collected_at.text,
        "visit": f.visit,
        "specimen": f.specimen,
        "result_text": f.result_text,
        "grades": _grades_json(stored.grades),
        "ctcae_version": stored.grades[0].ctcae_version if stored.grades else "",
        "baseline_msg_id": stored.baseline_msg_id,
    }


def _stored_finding(row: Any) -> StoredFinding:
    finding = Finding(
        envelope=Envelope(
            msg_id=row.msg_id,
            msg_type=MessageType(row.domain),
            sent_at=row.sent_at,
            site_id=row.site_id,
            record_version=row.record_version,
            study_id=row.study_id,
            subject_id=row.subject_id,
        ),
        test_code=row.test_code,
        value=row.value,
        unit=row.unit,
        collected_at=PartialDate.parse(row.collected_at),
        baseline_flag=row.baseline_flag == "Y",
        lln=row.lln,
        uln=row.uln,
        normal_range_indicator=row.normal_range_indicator,
        visit=row.visit,
        specimen=row.specimen,
        result_text=row.result_text,
    )
    grades = tuple(_graded(g, row.ctcae_version) for g in row.grades)
    return StoredFinding(finding, grades, row.baseline_msg_id)


class _Findings(_Sql):
    async def add(self, findings: Sequence[StoredFinding]) -> None:
        await self._insert_ignore(t.finding, [_finding_row(f) for f in findings], ["msg_id"])

    async def last_complete_dates(self, on_or_before: str) -> dict[SubjectKey, str]:
        c = t.finding.c
        day = func.substr(c.collected_at, 1, 10)
        query = (
            select(c.study_id, c.subject_id, func.max(day))
            .where(func.length(c.collected_at) >= 10, day <= on_or_before)
            .group_by(c.study_id, c.subject_id)
        )
        return {(row[0], row[1]): str(row[2]) for row in await self.conn.execute(query)}

    async def history(
        self, keys: Iterable[TestKey], *, collected_from: str | None = None, collected_before: str | None = None
    ) -> list[StoredFinding]:
        c = t.finding.c
        where = []
        if collected_from is not None:
            where.append(c.collected_at >= collected_from)
        if collected_before is not None:
            where.append(c.collected_at < collected_before)
        if where:
            # A collection date without its day ("2026-04") cannot be placed in the window: always read it and
            # let the domain decide (it counts undecidable dates as inside).
            where = [or_(and_(*where), func.length(c.collected_at) < 10)]
        rows = await self._select_by_keys(t.finding, ("study_id", "subject_id", "domain", "test_code"), keys, where)
        return [_stored_finding(row) for row in rows]

    async def for_subjects(self, subjects: Iterable[SubjectKey]) -> list[StoredFinding]:
        rows = await self._select_by_keys(t.finding, ("study_id", "subject_id"), subjects)
        return [_stored_finding(row) for row in rows]

    async def same_draw(self, wanted: Iterable[DrawKey]) -> dict[DrawKey, StoredFinding]:
        columns = ("study_id", "subject_id", "test_code", "collected_at")
        rows = await self._select_by_keys(t.finding, columns, wanted)
        return {(row.study_id, row.subject_id, row.test_code, row.collected_at): _stored_finding(row) for row in rows}

    async def update_grades(self, findings: Sequence[StoredFinding]) -> None:
        if not findings:
            return
        c = t.finding.c
        statement = (
            update(t.finding)
            .where(c.msg_id == bindparam("b_msg_id"))
            .values(grades=bindparam("b_grades"), baseline_msg_id=bindparam("b_baseline"))
        )
        await self.conn.execute(
            statement,
            [
                {
                    "b_msg_id": f.finding.envelope.msg_id,
                    "b_grades": [_grade_json(g) for g in f.grades],
                    "b_baseline": f.baseline_msg_id,
                }
                for f in findings
            ],
        )

    async def baselines(self, keys: Iterable[TestKey]) -> dict[TestKey, Finding]:
        columns = ("study_id", "subject_id", "domain", "test_code")
        chosen = {row.msg_id for row in await self._select_by_keys(t.finding_baseline, columns, keys)}
        found: dict[TestKey, Finding] = {}
        for chunk in _chunks(sorted(chosen)):
            for row in await self.conn.execute(select(t.finding).where(t.finding.c.msg_id.in_(chunk))):
                found[(row.study_id, row.subject_id, row.domain, row.test_code)] = _stored_finding(row).finding
        return found

    async def set_baselines(self, baselines: Sequence[Finding]) -> None:
        rows = [
            {
                "study_id": f.envelope.study_id,
                "subject_id": f.envelope.subject_id,
                "domain": f.domain.value,
                "test_code": f.test_code,
                "msg_id": f.envelope.msg_id,
            }
            for f in baselines
        ]
        await self._upsert(t.finding_baseline, rows, ["study_id", "subject_id", "domain", "test_code"])


class _Hits(_Sql):
    _KEY = ("rule_id", "study_id", "subject_id", "occurrence")

    async def add(self, hits: Sequence[RuleHit]) -> None:
        rows = [
            {
                "rule_id": h.rule.id,
                "occurrence": h.occurrence,
                "msg_id": h.msg_id,
                "alert_key": h.alert_key,
                "study_id": h.study_id,
                "subject_id": h.subject_id,
                "subject_ref": h.subject_ref,
                "term": h.term,
                "grade": h.grade,
                "observed_on": h.observed_on,
                "detail": h.detail,
                "ruleset_hash": h.ruleset_hash,
                "ctcae_version": h.ctcae_version,
            }
            for h in hits
        ]
        # Upsert: a re-graded finding is evaluated again and its hit carries the new grade. One row per key
        # per statement (PostgreSQL refuses an upsert that touches a row twice).
        unique = {tuple(row[k] for k in self._KEY): row for row in rows}
        await self._upsert(t.rule_hit, list(unique.values()), list(self._KEY))

    async def alert_keys(self, keys: Iterable[HitKey]) -> dict[HitKey, str]:
        rows = await self._select_by_keys(t.rule_hit, self._KEY, keys)
        return {(r.rule_id, r.study_id, r.subject_id, r.occurrence): r.alert_key for r in rows}

    async def occurrences(self, alert_keys: Iterable[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        c = t.rule_hit.c
        for chunk in _chunks(sorted(set(alert_keys))):
            for row in await self.conn.execute(select(c.alert_key, c.occurrence).where(c.alert_key.in_(chunk))):
                found.setdefault(row.alert_key, set()).add(row.occurrence)
        return found

    async def retain(self, occurrences: Mapping[str, Collection[str]]) -> int:
        # Read the keys (the alert-key index serves it), delete only what is stale: usually nothing.
        stale: list[dict[str, Any]] = []
        columns = [t.rule_hit.c[k] for k in self._KEY]
        for chunk in _chunks(sorted(occurrences)):
            result = await self.conn.execute(
                select(t.rule_hit.c.alert_key, *columns).where(t.rule_hit.c.alert_key.in_(chunk))
            )
            stale += [
                dict(zip(self._KEY, row[1:], strict=True))
                for row in result
                if row.occurrence not in occurrences[row.alert_key]
            ]
        if stale:
            where = [c == bindparam(f"k_{c.name}") for c in columns]
            await self.conn.execute(
                t.rule_hit.delete().where(*where), [{f"k_{k}": v for k, v in row.items()} for row in stale]
            )
        return len(stale)


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


def _alert(row: Any) -> Alert:
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
        raised_at=_utc(row["raised_at"]),
        updated_at=_utc(row["updated_at"]),
        last_msg_id=row["last_msg_id"],
        detail=row["detail"],
        ruleset_hash=row["ruleset_hash"],
        ctcae_version=row["ctcae_version"],
    )


def _aggregated_utc(value: datetime | str) -> datetime:
    """A timestamp read through an aggregate (MIN/MAX), which loses the column type: SQLite hands back the stored
    text of a UTC instant, without its offset."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # snapshots in JSON columns keep ISO strings
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC)


class _Alerts(_Sql):
    async def get(self, keys: Iterable[str]) -> dict[str, Alert]:
        found: dict[str, Alert] = {}
        for chunk in _chunks(list(keys)):
            result = await self.conn.execute(select(t.alert).where(t.alert.c.alert_key.in_(chunk)))
            for row in result.mappings():
                found[row["alert_key"]] = _alert(row)
        return found

    async def by_id(self, alert_id: str) -> Alert | None:
        row = (await self.conn.execute(select(t.alert).where(t.alert.c.alert_id == alert_id))).mappings().first()
        return _alert(row) if row is not None else None

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
            AlertChange(_alert(row.snapshot), ChangeKind(row.kind), row.previous_grade, row.msg_id, row.at)
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
        return [_alert(row) for row in (await self.conn.execute(query)).mappings()]


def _notice(row: Any) -> Notice:
    return Notice(
        notice_id=row.notice_id,
        alert_key=row.alert_key,
        kind=row.kind,
        recipients=tuple(row.recipients),
        context=dict(row.context),
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        recipient_outcomes=dict(row.recipient_outcomes or {}),
    )


class _Outbox(_Sql):
    async def add(self, notices: Sequence[Notice]) -> None:
        rows = [
            {
                "notice_id": n.notice_id,
                "alert_key": n.alert_key,
                "kind": n.kind,
                "recipients": list(n.recipients),
                "context": n.context,
                "created_at": n.created_at,
                "attempts": n.attempts,
                "next_attempt_at": n.next_attempt_at,
                "sent_at": n.sent_at,
                "last_error": n.last_error,
                "recipient_outcomes": dict(n.recipient_outcomes) or None,
            }
            for n in notices
        ]
        await self._insert_ignore(t.outbox, rows, ["notice_id"])

    async def due(self, now: datetime, limit: int) -> list[Notice]:
        c = t.outbox.c
        query = (
            select(t.outbox)
            .where(c.sent_at.is_(None), or_(c.attempts == 0, c.next_attempt_at <= now))
            .order_by(c.created_at, c.notice_id)
            .limit(limit)
        )
        return [_notice(row) for row in await self.conn.execute(query)]

    async def mark_sent(self, notice_id: str, at: datetime, outcomes: Mapping[str, str] | None = None) -> None:
        c = t.outbox.c
        values: dict[str, Any] = {"sent_at": at, "attempts": c.attempts + 1, "last_error": None}
        values["next_attempt_at"] = None
        if outcomes is not None:
            values["recipient_outcomes"] = dict(outcomes)
        await self.conn.execute(update(t.outbox).where(c.notice_id == notice_id).values(**values))

    async def mark_failed(
        self, notice_id: str, error: str, next_attempt_at: datetime, outcomes: Mapping[str, str] | None = None
    ) -> None:
        c = t.outbox.c
        values: dict[str, Any] = {"attempts": c.attempts + 1, "last_error": error, "next_attempt_at": next_attempt_at}
        if outcomes is not None:
            values["recipient_outcomes"] = dict(outcomes)
        await self.conn.execute(update(t.outbox).where(c.notice_id == notice_id).values(**values))

    async def unsent_since(self, before: datetime, limit: int) -> list[Notice]:
        c = t.outbox.c
        query = (
            select(t.outbox)
            .where(c.sent_at.is_(None), c.created_at <= before)
            .order_by(c.created_at, c.notice_id)
            .limit(limit)
        )
        return [_notice(row) for row in await self.conn.execute(query)]

    async def undeliverable(self, limit: int) -> list[Notice]:
        # Few rows have outcomes other than "delivered": read the rows with any and filter here (JSON queries
        # differ between the two databases).
        c = t.outbox.c
        query = select(t.outbox).where(c.recipient_outcomes.is_not(None)).order_by(c.created_at.desc())
        found = [n for n in (_notice(row) for row in await self.conn.execute(query)) if n.undeliverable]
        return found[:limit]

    async def counts(self) -> dict[str, int]:
        c = t.outbox.c
        result = await self.conn.execute(
            select(
                func.count().filter(c.sent_at.is_not(None)),
                func.count().filter(c.sent_at.is_(None), or_(c.attempts == 0, c.next_attempt_at.is_not(None))),
                func.count().filter(c.sent_at.is_(None), c.attempts > 0, c.next_attempt_at.is_(None)),
            )
        )
        sent, pending, failed = result.one()
        return {"sent": int(sent), "pending": int(pending), "failed": int(failed)}


class _Digests(_Sql):
    async def last_sent(self, kind: str) -> datetime | None:
        result = await self.conn.execute(select(func.max(t.digest_run.c.sent_at)).where(t.digest_run.c.kind == kind))
        value = result.scalar_one_or_none()
        return _utc(value) if value is not None else None

    async def record_sent(self, kind: str, at: datetime, recipients: Sequence[str]) -> None:
        await self.conn.execute(insert(t.digest_run).values(kind=kind, sent_at=at, recipients=list(recipients)))


class _Leases(_Sql):
    async def claim(self, job: str, slot: int, holder: str, now: datetime, held_until: datetime) -> bool:
        c = t.job_lease.c
        # The row exists once per job; the conditional UPDATE is the atomic claim (PostgreSQL re-checks the
        # WHERE clause on the locked row, SQLite has a single writer). A run still held blocks the next slot:
        # a job never overlaps itself across workers.
        await self._insert_ignore(
            t.job_lease, [{"job": job, "slot": -1, "holder": "", "held_until": now, "done_at": now}], ["job"]
        )
        result = await self.conn.execute(
            update(t.job_lease)
            .where(
                c.job == job,
                or_(
                    and_(c.slot < slot, or_(c.done_at.is_not(None), c.held_until < now)),
                    and_(c.slot == slot, c.done_at.is_(None), c.held_until < now),
                ),
            )
            .values(slot=slot, holder=holder, held_until=held_until, done_at=None)
        )
        return bool(result.rowcount == 1)

    async def complete(self, job: str, slot: int, holder: str, at: datetime) -> None:
        c = t.job_lease.c
        await self.conn.execute(
            update(t.job_lease).where(c.job == job, c.slot == slot, c.holder == holder).values(done_at=at)
        )

    async def release(self, job: str, holder: str, at: datetime) -> None:
        c = t.job_lease.c
        await self.conn.execute(
            update(t.job_lease)
            .where(c.job == job, c.holder == holder, c.done_at.is_(None))
            .values(held_until=at - timedelta(seconds=1))
        )

    async def states(self) -> list[LeaseState]:
        result = await self.conn.execute(select(t.job_lease).order_by(t.job_lease.c.job))
        return [LeaseState(r.job, r.slot, r.holder, r.held_until, r.done_at) for r in result]


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


class _Notifications(_Sql):
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

    async def pending(self) -> list[Notification]:
        c = t.notification.c
        query = select(t.notification).where(c.state == "pending").order_by(c.created_at, c.notification_id)
        return [_notification(row) for row in await self.conn.execute(query)]

    async def groups(self, group_ids: Iterable[str]) -> dict[str, NotificationGroup]:
        found: dict[str, NotificationGroup] = {}
        for chunk in _chunks(sorted(set(group_ids))):
            result = await self.conn.execute(
                select(t.notification_group).where(t.notification_group.c.group_id.in_(chunk))
            )
            found.update({row.group_id: _group(row) for row in result})
        return found

    async def log(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AlertNotificationState]:
        wanted = set(keys)
        found: dict[tuple[str, str], AlertNotificationState] = {}
        c = t.notification_log.c
        for chunk in _chunks(sorted({key for _, key in wanted})):
            for row in await self.conn.execute(select(t.notification_log).where(c.alert_key.in_(chunk))):
                if (row.receiver, row.alert_key) in wanted:
                    found[(row.receiver, row.alert_key)] = _log_entry(row)
        return found

    async def open_alerts(self) -> list[AlertNotificationState]:
        c = t.notification_log.c
        query = select(t.notification_log).where(c.status == "open").order_by(c.receiver, c.alert_key)
        return [_log_entry(row) for row in await self.conn.execute(query)]

    async def mark_mailed(self, notification_ids: Sequence[str], mail_id: str, at: datetime) -> int:
        c = t.notification.c
        count = 0
        for chunk in _chunks(list(notification_ids)):
            # Conditional: a concurrent flush that took these first leaves nothing to take (PostgreSQL re-checks
            # the WHERE clause after waiting for its lock), and the caller then rolls back.
            result = await self.conn.execute(
                update(t.notification)
                .where(c.notification_id.in_(chunk), c.state == "pending")
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


def _clock(row: Any) -> SaeClock:
    return SaeClock(
        study_id=row.study_id,
        subject_id=row.subject_id,
        ae_spid=row.aespid,
        rule_id=row.rule_id,
        started_at=row.started_at,
        start_msg_id=row.start_msg_id,
        short_known_at=row.short_known_at,
        reminders_sent=row.reminders_sent,
        overdue_sent=bool(row.overdue_sent),
        closed_at=row.closed_at,
        closed_reason=row.closed_reason,
    )


class _SaeClocks(_Sql):
    async def get(self, keys: Iterable[tuple[str, ClockKey]]) -> dict[tuple[str, ClockKey], SaeClock]:
        flat = {(rule_id, *case) for rule_id, case in keys}
        rows = await self._select_by_keys(t.sae_clock, ("rule_id", "study_id", "subject_id", "aespid"), flat)
        clocks = [_clock(row) for row in rows]
        return {(clock.rule_id, clock.key): clock for clock in clocks}

    async def put(self, clocks: Sequence[SaeClock]) -> None:
        rows = [
            {
                "rule_id": k.rule_id,
                "study_id": k.study_id,
                "subject_id": k.subject_id,
                "aespid": k.ae_spid,
                "started_at": k.started_at,
                "start_msg_id": k.start_msg_id,
                "short_known_at": k.short_known_at,
                "reminders_sent": k.reminders_sent,
                "overdue_sent": k.overdue_sent,
                "closed_at": k.closed_at,
                "closed_reason": k.closed_reason,
            }
            for k in clocks
        ]
        await self._upsert(t.sae_clock, rows, ["rule_id", "study_id", "subject_id", "aespid"])

    async def open(self) -> list[SaeClock]:
        c = t.sae_clock.c
        query = select(t.sae_clock).where(c.closed_at.is_(None)).order_by(c.started_at, c.rule_id, c.aespid)
        return [_clock(row) for row in await self.conn.execute(query)]

    async def for_case(self, key: ClockKey) -> list[SaeClock]:
        c = t.sae_clock.c
        query = (
            select(t.sae_clock)
            .where(c.study_id == key[0], c.subject_id == key[1], c.aespid == key[2])
            .order_by(c.rule_id)
        )
        return [_clock(row) for row in await self.conn.execute(query)]


def _review_action(row: Any) -> ReviewAction:
    return ReviewAction(
        alert_key=row.alert_key,
        kind=ActionKind(row.kind),
        reviewer=row.reviewer,
        role=Role(row.role),
        reason=row.reason,
        at=row.at,
        old_value=row.old_value,
        new_value=row.new_value,
        drug=row.drug,
        duplicate_of=row.duplicate_of,
        clock_effect=ClockEffect(row.clock_effect) if row.clock_effect else None,
        clock_reason=row.clock_reason,
    )


class _ReviewActions(_Sql):
    """INSERT and SELECT only: the table is append-only (its triggers refuse UPDATE and DELETE)."""

    async def add(self, actions: Sequence[ReviewAction]) -> None:
        rows = [
            {
                "alert_key": a.alert_key,
                "kind": a.kind.value,
                "reviewer": a.reviewer,
                "role": a.role.value,
                "reason": a.reason,
                "at": a.at,
                "drug": a.drug,
                "old_value": a.old_value,
                "new_value": a.new_value,
                "duplicate_of": a.duplicate_of,
                "clock_effect": a.clock_effect.value if a.clock_effect else None,
                "clock_reason": a.clock_reason,
            }
            for a in actions
        ]
        if rows:
            await self.conn.execute(insert(t.review_actions), rows)

    async def for_alerts(self, keys: Iterable[str]) -> dict[str, list[ReviewAction]]:
        c = t.review_actions.c
        found: dict[str, list[ReviewAction]] = {}
        for chunk in _chunks(sorted(set(keys))):
            query = select(t.review_actions).where(c.alert_key.in_(chunk)).order_by(c.id)
            for row in await self.conn.execute(query):
                found.setdefault(row.alert_key, []).append(_review_action(row))
        return found

    async def last_at(self, reviewer: str | None = None) -> datetime | None:
        c = t.review_actions.c
        query = select(func.max(c.at))
        if reviewer is not None:
            query = query.where(c.reviewer == reviewer)
        value = (await self.conn.execute(query)).scalar()
        return _utc(value) if value is not None else None

    async def every(self) -> list[ReviewAction]:
        rows = await self.conn.execute(select(t.review_actions).order_by(t.review_actions.c.id))
        return [_review_action(row) for row in rows]


def _publication(row: Any) -> Publication:
    return Publication(
        publication_id=row.publication_id,
        stream=row.stream,
        key=row.key,
        value=row.value,
        created_at=_utc(row.created_at),
        published_at=_utc(row.published_at) if row.published_at is not None else None,
    )


class _Publications(_Sql):
    async def add(self, publications: Sequence[Publication]) -> None:
        rows = [
            {
                "publication_id": p.publication_id,
                "stream": p.stream,
                "key": p.key,
                "value": p.value,
                "created_at": p.created_at,
                "published_at": p.published_at,
            }
            for p in publications
        ]
        await self._insert_ignore(t.publication, rows, ["publication_id"])

    async def pending(self, created_before: datetime, limit: int) -> list[Publication]:
        c = t.publication.c
        query = (
            select(t.publication)
            .where(c.published_at.is_(None), c.created_at < created_before)
            .order_by(c.created_at, c.publication_id)
            .limit(limit)
        )
        return [_publication(row) for row in await self.conn.execute(query)]

    async def backlog(self) -> int:
        query = select(func.count()).select_from(t.publication).where(t.publication.c.published_at.is_(None))
        return int((await self.conn.execute(query)).scalar_one())

    async def mark_published(self, publication_ids: Sequence[str], at: datetime) -> None:
        c = t.publication.c
        for chunk in _chunks(sorted(set(publication_ids))):
            await self.conn.execute(
                update(t.publication)
                .where(c.publication_id.in_(chunk), c.published_at.is_(None))
                .values(published_at=at)
            )


class SqlUnitOfWork:
    """One database transaction. Without `commit()` the block rolls back, whatever happened inside it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self.inbox = _Inbox(self)
        self.dead_letters = _DeadLetters(self)
        self.subjects = _Subjects(self)
        self.adverse_events = _AdverseEvents(self)
        self.findings = _Findings(self)
        self.hits = _Hits(self)
        self.alerts = _Alerts(self)
        self.outbox = _Outbox(self)
        self.digests = _Digests(self)
        self.leases = _Leases(self)
        self.notifications = _Notifications(self)
        self.sae_clocks = _SaeClocks(self)
        self.review_actions = _ReviewActions(self)
        self.publications = _Publications(self)
        self.tumour_responses = _TumourResponses(self)
        self.users = SqlUsers(self)
        self.api_tokens = SqlApiTokens(self)
        self.sessions = SqlSessions(self)
        self.audit_log = SqlAuditLog(self)

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._connection

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        await self._connection.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        connection, self._connection = self.connection, None
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()

    async def commit(self) -> None:
        await self.connection.commit()


class SqlStore:
    """A factory of SQL units of work over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)
