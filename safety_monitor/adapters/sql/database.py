"""Owns database connections: URL normalisation, engine set-up per dialect, and applying migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")
CREATE_COMMAND = "safety-monitor db upgrade"


class DatabaseNotReady(Exception):
    """A command that only reads found no database, or one without this version's schema: nothing was created."""


def shown_url(url: str) -> str:
    """The URL as an operator may see it in a message: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def async_url(url: str) -> str:
    """Accept the URLs operators write (postgresql://, sqlite:///) and pick the async driver."""
    parsed = make_url(url)
    drivers = {
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    if parsed.drivername not in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        raise ValueError(
            f"DATABASE_URL scheme {parsed.drivername!r} is not supported: use sqlite:///PATH or postgresql://HOST/DB"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at each checkpoint, safe on crash
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _show_parameters() -> bool:
    """SQL parameters (USUBJID, AETERM, ...) appear in database errors only with debug logging (`--debug`)."""
    return logging.getLogger("safety_monitor").isEnabledFor(logging.DEBUG)


def create_engine(url: str, *, schema: str | None = None, create_directory: bool = True) -> AsyncEngine:
    """An async engine; for SQLite the parent directory is created and WAL mode set on every connection.

    `schema` (PostgreSQL only) puts every table in that schema through the search path; tests use it to
    isolate runs that share the `test` database. Errors do not quote their SQL parameters, which hold subject
    data (hide_parameters), unless debug logging is on.
    """
    full = async_url(url)
    hide = not _show_parameters()
    parsed = make_url(full)
    if parsed.drivername.startswith("sqlite"):
        if create_directory and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(full, connect_args={"timeout": 30}, hide_parameters=hide)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No client-side cache of prepared statements: PostgreSQL switches a reused prepared statement to a generic
    # plan after five runs, and a generic plan made while a table was small (a new trial, a new schema) stays a
    # sequential scan as the table grows: the batch look-ups (`msg_id IN (...)` over 500 keys) then cost ~80 ms
    # each instead of ~1 ms. Preparing each statement afresh (one extra round trip) plans it for the table as it
    # is; measured 2x the events/s of the cached form on the replay benchmark.
    connect_args: dict[str, Any] = {"prepared_statement_cache_size": 0}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(full, connect_args=connect_args, pool_pre_ping=True, hide_parameters=hide)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every pending migration (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def require_schema(engine: AsyncEngine, url: str) -> None:
    """Refuse, creating nothing, a database without this version's schema (a read must not create one).

    Call `require_database_file` before the engine connects: connecting to SQLite creates the file.
    """
    async with engine.connect() as connection:
        current = await connection.run_sync(_revision)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if current is None:
        raise DatabaseNotReady(
            f"the database at DATABASE_URL={shown_url(url)} has no safety-monitor tables: check DATABASE_URL, or "
            f"create them with `{CREATE_COMMAND}` (`safety-monitor demo` and `replay` also do)"
        )
    if current != head:
        raise DatabaseNotReady(
            f"the database at DATABASE_URL={shown_url(url)} is at schema revision {current}, this version needs "
            f"{head}: run `{CREATE_COMMAND}`"
        )


def require_database_file(url: str) -> None:
    """A SQLite file that does not exist is refused before anything connects (connecting would create it)."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        where = path if path.is_absolute() else f"{path} (relative to {Path.cwd()})"
        raise DatabaseNotReady(
            f"no database at DATABASE_URL={url}: {where} does not exist. Run the command from the directory that "
            f"holds var/, set DATABASE_URL, or create it with `{CREATE_COMMAND}` (`safety-monitor demo` and "
            "`replay` also do)"
        )
