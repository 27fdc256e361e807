"""Every statement a replay and a delivery pass run on SQLite is planned on an index: no full scan of a table that
grows with the trial, and a look-up by primary key goes through the primary key (EXPLAIN QUERY PLAN)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.bootstrap import bootstrap
from safety_monitor.demo import generate_trial, write_jsonl
from safety_monitor.settings import Settings
from streams.embedded import replay_file
from tests.conftest import ROOT
from tests.workspace import NOW

# Statements that read a whole table on purpose, each with why that stays bounded or is the point.
WHOLE_TABLE_READS = {
    "subject": "the safety population (cohort denominators): one row per enrolled subject",
    "notification_group": "groups are few (one per receiver and grouping labels), read by primary key otherwise",
    "digest_log": "one row per digest kind",
    "job_lease": "one row per scheduled job and slot",
    "alembic_version": "the schema version",
    # Not a table: the keys of one look-up, bound as a JSON array (repositories/base.py, key_condition).
    "json_each": "the bound list of keys a look-up by several columns searches the index for",
}
_SCAN = re.compile(r"^SCAN (\w+)(?! USING (?:COVERING )?INDEX)")
_PRIMARY_KEY_IN = re.compile(r"WHERE (\w+)\.(\w+) IN \(")


def _statements(lines: Sequence[str], folder: Path) -> tuple[Path, dict[str, Any]]:
    """The distinct statements (with one set of their parameters) of a replay of `lines` and one delivery pass."""
    settings = Settings(
        database_url=f"sqlite:///{folder}/trial.db",
        rules_dir=ROOT / "rules",
        templates_dir=ROOT / "templates",
        mail_capture_dir=folder / "mail",
    )
    file = folder / "trial.jsonl"
    write_jsonl(file, lines)
    seen: dict[str, Any] = {}

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            seen.setdefault(statement, parameters[0] if many else parameters)

    async def work() -> None:
        app = bootstrap(settings, clock=FixedClock(NOW))
        assert app.engine is not None
        try:
            await app.start()
            event.listen(app.engine.sync_engine, "before_cursor_execute", capture)
            await replay_file(app, file)
            await app.deliver(ignore_waits=True)
        finally:
            await app.close()

    asyncio.run(work())
    return folder / "trial.db", seen


def _plans(database: Path, statements: Mapping[str, Any]) -> dict[str, list[str]]:
    with sqlite3.connect(database) as db:
        return {
            sql: [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in statements.items()
        }


def _primary_keys(database: Path) -> dict[str, list[str]]:
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table'")]
        return {t: [row[1] for row in db.execute(f"pragma table_info({t})") if row[5]] for t in tables}


def test_the_pipeline_and_the_delivery_never_scan_a_growing_table(tmp_path: Path) -> None:
    trial = generate_trial(subjects=30, days=60)
    database, statements = _statements(trial.lines, tmp_path)
    assert len(statements) > 25, "the replay ran too few statements to be a check"
    plans = _plans(database, statements)
    keys = _primary_keys(database)
    problems = []
    for sql, plan in plans.items():
        for step in plan:
            scan = _SCAN.match(step)
            if scan and scan[1] not in WHOLE_TABLE_READS:
                problems.append(f"{step}\n    in: {sql[:300]}")
        lookup = _PRIMARY_KEY_IN.search(sql)
        if lookup and keys.get(lookup[1]) == [lookup[2]]:
            autoindex = f"sqlite_autoindex_{lookup[1]}_1"
            if not any(lookup[1] in step and (autoindex in step or "PRIMARY KEY" in step) for step in plan):
                problems.append(f"{lookup[1]} by {lookup[2]} not through its primary key: {plan}\n    in: {sql[:300]}")
    assert not problems, "\n".join(problems)
