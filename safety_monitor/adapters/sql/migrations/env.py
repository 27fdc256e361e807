"""Alembic environment: migrations run on a connection the application hands over, or from DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from safety_monitor.adapters.sql.database import create_engine
from safety_monitor.adapters.sql.tables import metadata

DEFAULT_URL = "sqlite:///var/safety-monitor.db"


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables the portable way.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported: run migrations against a database")
else:
    asyncio.run(_run_from_url(os.environ.get("DATABASE_URL", DEFAULT_URL)))
