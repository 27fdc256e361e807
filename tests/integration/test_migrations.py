"""Migrations build exactly the schema the code declares, on SQLite and PostgreSQL (what `alembic check` checks)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from safety_monitor.adapters.sql.database import upgrade
from safety_monitor.adapters.sql.tables import metadata
from tests.conftest import Database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_head_matches_the_declared_schema(database: Database) -> None:
    async with database.store.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []
        assert {t.name for t in metadata.sorted_tables} <= await connection.run_sync(_tables)


async def test_upgrade_is_idempotent(database: Database) -> None:
    await upgrade(database.store.engine)
    async with database.store.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []
