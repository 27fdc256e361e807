"""Owns the SQL tumour response repository: every version of each response record, and the current ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.repositories.base import SqlRepository
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.messages import (
    Envelope,
    MessageType,
    OverallResponse,
    TumourResponse,
)
from safety_monitor.service.ports import ResponseKey

# Enum lookups by value, without Enum.__call__ per row (thousands of rows per report).
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


class SqlTumourResponseRepository(SqlRepository):
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
