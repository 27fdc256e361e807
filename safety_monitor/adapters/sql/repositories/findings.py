"""Owns the SQL finding repository: lab and vital-sign findings, their grades (as JSON) and the baselines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, and_, bindparam, cast, func, or_, select, update

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository, chunks
from safety_monitor.domain.baselines import TestKey, test_key
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.grading import Graded, GradeResult, NotGradable
from safety_monitor.domain.messages import (
    Envelope,
    Finding,
    MessageType,
)
from safety_monitor.service.ports import DrawKey, SubjectKey
from safety_monitor.service.records import (
    StoredFinding,
)


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
    (SqlRepository._write_many). Read only."""
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


@lru_cache(maxsize=4096)
def _grades(text: str, version: str) -> tuple[GradeResult, ...]:
    """A stored finding's grades from their JSON text. Most results share a few thousand grade lists (3,810 in
    50,000 results of the scale benchmark), so each is parsed once; the results are immutable and shared."""
    return tuple(_graded(g, version) for g in json.loads(text))


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


_c = t.finding.c
# The columns a stored finding is read from, in the order `_stored_finding` unpacks them: by position, because a
# row's attribute look-up by name cost more than building the finding (12 of 36 us a row), and the grades as their
# JSON text, parsed once per distinct text (`_grades`).
_READ = (
    _c.msg_id,
    _c.domain,
    _c.study_id,
    _c.subject_id,
    _c.site_id,
    _c.sent_at,
    _c.record_version,
    _c.test_code,
    _c.value,
    _c.unit,
    _c.lln,
    _c.uln,
    _c.normal_range_indicator,
    _c.baseline_flag,
    _c.collected_at,
    _c.visit,
    _c.specimen,
    _c.result_text,
    cast(_c.grades, Text).label("grades"),
    _c.ctcae_version,
    _c.baseline_msg_id,
)
_DOMAINS = {m.value: m for m in MessageType}


def _stored_finding(row: Sequence[Any]) -> StoredFinding:
    (
        msg_id,
        domain,
        study_id,
        subject_id,
        site_id,
        sent_at,
        record_version,
        test_code,
        value,
        unit,
        lln,
        uln,
        normal_range_indicator,
        baseline_flag,
        collected_at,
        visit,
        specimen,
        result_text,
        grades,
        ctcae_version,
        baseline_msg_id,
    ) = row
    finding = Finding(
        envelope=Envelope(
            msg_id=msg_id,
            msg_type=_DOMAINS[domain],
            sent_at=sent_at,
            site_id=site_id,
            record_version=record_version,
            study_id=study_id,
            subject_id=subject_id,
        ),
        test_code=test_code,
        value=value,
        unit=unit,
        collected_at=PartialDate.parse(collected_at),
        baseline_flag=baseline_flag == "Y",
        lln=lln,
        uln=uln,
        normal_range_indicator=normal_range_indicator,
        visit=visit,
        specimen=specimen,
        result_text=result_text,
    )
    return StoredFinding(finding, _grades(grades, ctcae_version), baseline_msg_id)


class SqlFindingRepository(SqlRepository):
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
        columns = ("study_id", "subject_id", "domain", "test_code")
        rows = await self._select_by_keys(t.finding, columns, keys, where, selected=_READ)
        return [_stored_finding(row) for row in rows]

    async def for_subjects(self, subjects: Iterable[SubjectKey]) -> list[StoredFinding]:
        rows = await self._select_by_keys(t.finding, ("study_id", "subject_id"), subjects, selected=_READ)
        return [_stored_finding(row) for row in rows]

    async def same_draw(self, wanted: Iterable[DrawKey]) -> dict[DrawKey, StoredFinding]:
        columns = ("study_id", "subject_id", "test_code", "collected_at")
        rows = await self._select_by_keys(t.finding, columns, wanted, selected=_READ)
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
        for chunk in chunks(sorted(chosen)):
            for row in await self.conn.execute(select(*_READ).where(_c.msg_id.in_(chunk))):
                finding = _stored_finding(row).finding
                found[test_key(finding)] = finding
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
