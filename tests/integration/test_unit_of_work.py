"""The SQL unit of work on SQLite: batch writes handed to the driver store exactly what SQLAlchemy's own binding
stores (the same values, the same storage classes), in every table the pipeline writes."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.repositories.base import SqlRepository
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.cli.rule_tests import default_grader
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.records import InboundMessage, RejectedMessage
from tests.conftest import RECIPIENTS, ROOT
from tests.factories import ae, enrolled_and_dosed, inbound, lb, subject_id, vs
from tests.harness import run

S1, S2 = subject_id(1), subject_id(2)


def batches() -> list[list[InboundMessage | RejectedMessage]]:
    draw = "2026-04-30T07:45"
    return [
        inbound(
            *enrolled_and_dosed(S1),
            ae(S1, "AE-1", "Haemoptysis", 3),
            ae(S2, "AE-1", "Hypertension", 2, soc="Vascular disorders", onset="2026-04-20"),
            lb(S1, "CA", 2.4, LBSTRESU="mmol/L", LBSTNRLO=2.2, LBSTNRHI=2.6, LBNRIND="NORMAL", LBDTC=draw),
            lb(S1, "ALT", 212, LBSTNRLO=None, LBNRIND=None),  # no LLN: a NULL REAL
            vs(S2, "SYSBP", 172, at="2026-04-25T08:00"),
            "not json",
        ),
        inbound(
            lb(S1, "ALB", 25, LBSTRESU="g/L", LBSTNRLO=35, LBSTNRHI=50, LBNRIND="LOW", LBDTC=draw),  # re-grades CA
            ae(S1, "AE-1", "Haemoptysis", 4, version=2),
            vs(S2, "SYSBP", 175, at="2026-04-27T08:00"),
        ),
    ]


def table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, each value beside its SQLite storage class."""
    with sqlite3.connect(path) as connection:
        names = [n for (n,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        found = {}
        for name in names:
            columns = [c[1] for c in connection.execute(f'PRAGMA table_info("{name}")')]
            select = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
            found[name] = sorted(connection.execute(f'SELECT {select} FROM "{name}"'), key=repr)
    return found


async def replay(path: Path, now: datetime, messages: list[list[InboundMessage | RejectedMessage]]) -> None:
    config = PipelineConfig(load_ruleset(ROOT / "rules"), default_grader(), RECIPIENTS)
    engine = create_engine(f"sqlite:///{path}")
    await upgrade(engine)
    try:
        for batch in messages:
            await run(SqlStore(engine), config, now, batch)
    finally:
        await engine.dispose()


async def test_driver_writes_store_what_sqlalchemy_binding_stores(
    tmp_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = batches()
    await replay(tmp_path / "driver.db", now, messages)

    async def through_sqlalchemy(self: SqlRepository, shape: object, statement: Any, table: object, rows: Any) -> None:
        await self.conn.execute(statement, rows)

    monkeypatch.setattr(SqlRepository, "_write_many", through_sqlalchemy)
    await replay(tmp_path / "sqlalchemy.db", now, messages)

    driver, reference = table_rows(tmp_path / "driver.db"), table_rows(tmp_path / "sqlalchemy.db")
    written = {name for name, rows in reference.items() if rows}
    assert written >= {"inbox", "finding", "adverse_event", "rule_hit", "alert", "alert_change", "notification"}
    for name in sorted(reference):
        assert driver[name] == reference[name], name
