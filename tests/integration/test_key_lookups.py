"""A batch look-up by a key of several columns reads exactly the rows asked for, on SQLite and PostgreSQL, and
SQLite plans it as a primary-key search per key: never the cross product of the key's columns, which grows with
each subject's history."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from safety_monitor.adapters.sql import tables as t
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.repositories.base import key_condition, parse_date
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.domain.derived_grades import span_of
from safety_monitor.domain.messages import AdverseEvent
from streams.decoding import Decoded, decode
from tests.conftest import Database
from tests.factories import ae

STUDY = "ALTER-ICI-01"
SUBJECTS = [f"CN001-{n:03d}" for n in range(30)]
TESTS = ["ALT", "AST", "BILI", "PLAT", "NEUT"]
KEY = ("study_id", "subject_id", "domain", "test_code")


async def _store_baselines(database: Database) -> None:
    rows = [
        {"study_id": STUDY, "subject_id": s, "domain": "LB", "test_code": c, "msg_id": f"m-{s}-{c}"}
        for s in SUBJECTS
        for c in TESTS
    ]
    async with database.store() as uow:
        await uow.connection.execute(insert(t.finding_baseline), rows)
        await uow.commit()


async def test_a_look_up_reads_only_the_keys_asked_for(database: Database) -> None:
    await _store_baselines(database)
    # Each subject asks for one test, a different one: an IN list per column would match all 30 x 5 rows.
    wanted = [(STUDY, s, "LB", TESTS[n % len(TESTS)]) for n, s in enumerate(SUBJECTS)]
    wanted.append((STUDY, "CN009-999", "LB", "ALT"))  # not stored: simply absent
    async with database.store() as uow:
        condition, values = key_condition(t.finding_baseline, KEY, wanted, uow.connection.dialect.name)
        rows = list(await uow.connection.execute(select(t.finding_baseline).where(condition), values))
    assert sorted((r.study_id, r.subject_id, r.domain, r.test_code) for r in rows) == sorted(wanted[:-1])


async def test_a_look_up_by_one_column_is_an_in_list(database: Database) -> None:
    await _store_baselines(database)
    async with database.store() as uow:
        condition, values = key_condition(t.finding_baseline, ("msg_id",), [("m-CN001-004-ALT",)])
        rows = list(await uow.connection.execute(select(t.finding_baseline).where(condition), values))
    assert [r.subject_id for r in rows] == ["CN001-004"]


async def test_sqlite_searches_the_primary_key_once_per_key(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/keys.db")
    await upgrade(engine)
    try:
        await _store_baselines(Database(str(engine.url), SqlStore(engine)))
        wanted = [(STUDY, s, "LB", "ALT") for s in SUBJECTS[:12]]
        condition, values = key_condition(t.finding_baseline, KEY, wanted)
        compiled = select(t.finding_baseline).where(condition).compile(engine.sync_engine)
    finally:
        await engine.dispose()
    with sqlite3.connect(tmp_path / "keys.db") as db:
        parameters = [values[name] for name in compiled.positiontup or ()]
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {compiled}", parameters)]
    # The keys are one bound JSON value, whatever their number: a list SQLite probes the primary key with.
    assert len(parameters) == 1, compiled.positiontup
    searches = [step for step in plan if step.startswith("SEARCH finding_baseline USING")]
    assert len(searches) == 1, plan
    assert "(study_id=? AND subject_id=? AND domain=? AND test_code=?)" in searches[0], plan
    assert "USING INDEX sqlite_autoindex_finding_baseline_1" in searches[0], plan  # its primary key
    assert "LIST SUBQUERY 1" in plan and not [step for step in plan if step.startswith("SCAN finding_baseline")], plan


async def test_keys_of_any_text_are_matched_exactly(database: Database) -> None:
    # Subject ids are site text: accents, other scripts, characters outside the BMP, quotes and backslashes travel
    # inside the bound JSON (SQLite) or arrays (PostgreSQL) and come back equal.
    odd = ["CN001-é", "CN001-漢字", "CN001-\U0001f600", 'CN001-"q"', "CN001-a\\b", "CN001-%_"]
    rows = [
        {"study_id": STUDY, "subject_id": s, "domain": "LB", "test_code": "ALT", "msg_id": f"m{n}"}
        for n, s in enumerate(odd)
    ]
    async with database.store() as uow:
        await uow.connection.execute(insert(t.finding_baseline), rows)
        await uow.commit()
    wanted = [(STUDY, s, "LB", "ALT") for s in odd] + [(STUDY, "CN001-%", "LB", "ALT"), (STUDY, "cn001-é", "LB", "ALT")]
    async with database.store() as uow:
        condition, values = key_condition(t.finding_baseline, KEY, wanted, uow.connection.dialect.name)
        found = list(await uow.connection.execute(select(t.finding_baseline).where(condition), values))
    assert sorted(r.subject_id for r in found) == sorted(odd)


@pytest.mark.parametrize("read", ["for_subjects", "spans"])
async def test_the_aes_of_some_subjects_and_terms_are_read_through_the_primary_key(tmp_path: Path, read: str) -> None:
    """Offered the folded-PT index, SQLite took it and read every AE of the terms in the trial per look-up."""
    engine = create_engine(f"sqlite:///{tmp_path}/aes.db")
    await upgrade(engine)
    issued: list[tuple[str, Any]] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: issued.append((a[2], a[3])))
    try:
        async with SqlStore(engine)() as uow:
            await getattr(uow.adverse_events, read)([(STUDY, s) for s in SUBJECTS[:8]], pts=["Pneumonitis"])
    finally:
        await engine.dispose()
    [(sql, parameters)] = [(s, p) for s, p in issued if s.lstrip().startswith("SELECT")]
    with sqlite3.connect(tmp_path / "aes.db") as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)]
    searches = [step for step in plan if step.startswith("SEARCH adverse_event")]
    assert searches and all("sqlite_autoindex_adverse_event_1 (study_id=? AND subject_id=?)" in s for s in searches), (
        plan
    )


def _current_ae(message: dict[str, Any], derived_grade: int | None = None) -> AdverseEvent:
    decoded = decode(json.dumps(message), "test")
    assert isinstance(decoded, Decoded) and isinstance(decoded.message, AdverseEvent), decoded
    return replace(decoded.message, derived_grade=derived_grade, derived_term="Platelet count decreased")


async def test_the_spans_of_aes_are_those_of_their_current_records(database: Database) -> None:
    """What folding new results into derived grades reads: the few columns of the same records as a whole read."""
    s1, s2, s3 = SUBJECTS[:3]
    events = [
        _current_ae(ae(s1, "AE-1", "Platelet count decreased", 2, onset="2026-04", AEENDTC="2026-05-03"), 3),
        _current_ae(ae(s1, "AE-2", "Thrombocytopenia", 1, onset=None)),
        _current_ae(ae(s1, "AE-3", "Pneumonitis", 2)),  # not a term asked for
        _current_ae(ae(s2, "AE-1", "Platelet count decreased", 3, onset="2026-05-01"), 4),
        _current_ae(ae(s3, "AE-1", "Platelet count decreased", 1)),  # not a subject asked for
    ]
    async with database.store() as uow:
        await uow.adverse_events.put_current(events)
        await uow.commit()
    wanted, pts = [(STUDY, s1), (STUDY, s2)], ["platelet count decreased", "THROMBOCYTOPENIA"]
    async with database.store() as uow:
        spans = await uow.adverse_events.spans(wanted, pts)
        whole = await uow.adverse_events.for_subjects(wanted, pts)
    assert sorted(spans, key=lambda s: s.record_key) == sorted(map(span_of, whole), key=lambda s: s.record_key)
    assert sorted((s.record_key[1:], s.onset_date, s.end_date, s.derived_grade) for s in spans) == [
        ((s1, "AE-1"), parse_date("2026-04"), parse_date("2026-05-03"), 3),
        ((s1, "AE-2"), None, None, None),
        ((s2, "AE-1"), parse_date("2026-05-01"), None, 4),
    ]
