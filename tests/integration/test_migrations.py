"""Migrations build exactly the schema the code declares, on SQLite and PostgreSQL (what `alembic check` checks)."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import SAWarning

from safety_monitor.adapters.sql.database import upgrade
from safety_monitor.adapters.sql.tables import metadata
from tests.conftest import Database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    with warnings.catch_warnings():
        # SQLAlchemy does not reflect SQLite's expression indexes (AEs by lower(aedecod)); it says so and leaves
        # them out of the comparison (tests/integration/test_query_plans.py shows the index in use there).
        # PostgreSQL reflects and compares them.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        warnings.filterwarnings(
            "ignore", "autogenerate skipping metadata-specified expression-based index", UserWarning
        )
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
