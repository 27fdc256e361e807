"""Owns how a command fails: one line naming the setting or server and what to do, the traceback with --verbose."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import click

from safety_monitor.adapters.sql.database import DatabaseNotReady, shown_url
from safety_monitor.settings import Settings

VERBOSE_HINT = "(safety-monitor --verbose ... shows the traceback)"

# Which server a failure came from, told by the modules its traceback went through: a refused connection is the
# same OSError whether PostgreSQL, a Kafka broker or an SMTP server refused it.
_COMPONENTS = (
    ("database", ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "alembic")),
    ("kafka", ("kafka", "aiokafka", "faust", "mode")),
    ("smtp", ("aiosmtplib", "smtplib")),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _modules(tb: TracebackType | None) -> Iterator[str]:
    while tb is not None:
        yield str(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next


def component(exc: BaseException) -> str | None:
    """ "database", "kafka", "smtp" or None, from the modules the failure's tracebacks went through."""
    modules = {m.split(".")[0] for e in _chain(exc) for m in _modules(e.__traceback__)}
    for name, roots in _COMPONENTS:
        if modules.intersection(roots):
            return name
    return None


def reason(exc: BaseException) -> str:
    """The innermost plain message (SQLAlchemy's wrapper text and background links left out), on one line."""
    orig: Any = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc) or type(exc).__name__
    text = text.split("\n(Background on this error")[0]
    text = " ".join(text.split())
    if isinstance(exc, OSError) and not isinstance(orig, Exception) and exc.strerror and type(exc).__name__ not in text:
        text = f"{type(exc).__name__}: {text}"
    return text


def explain(exc: BaseException) -> str:
    """One line: what failed, naming the setting or server, and what to do."""
    if isinstance(exc, DatabaseNotReady):
        return str(exc)
    env = os.environ
    where = component(exc)
    why = reason(exc)
    if where == "database":
        url = shown_url(env.get("DATABASE_URL", "").strip() or Settings().database_url)
        return (
            f"the database at DATABASE_URL={url} cannot be used: {why}. Check that the server runs and that "
            "DATABASE_URL names the right host, port, user, password and database"
        )
    if where == "kafka":
        servers = env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or "localhost:9092"
        return (
            f"no Kafka broker answers at KAFKA_BOOTSTRAP_SERVERS={servers}: {why}. Start the brokers "
            "(`make kafka-up` for a local one) or set KAFKA_BOOTSTRAP_SERVERS"
        )
    if where == "smtp":
        host = env.get("SMTP_HOST", "").strip() or "localhost"
        port = env.get("SMTP_PORT", "").strip() or "25"
        return (
            f"the SMTP server at SMTP_HOST={host} SMTP_PORT={port} failed: {why}. Check SMTP_HOST, SMTP_PORT, "
            "SMTP_SECURITY and the credentials"
        )
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or why}: {exc.filename}"
    return f"unexpected error: {type(exc).__name__}: {why}"


class FailingPlainly(click.Group):
    """The command group: an exception that is not a click usage error ends in one line (exit 1); with
    `--verbose` (set by the group's callback in `ctx.meta`) it propagates with its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except BrokenPipeError:
            # The reader went away (`... | head`): it has what it wanted, not a failure. Point stdout at /dev/null
            # so the interpreter's last flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except Exception as exc:
            if ctx.meta.get("safety_monitor.verbose"):
                raise
            hint = "" if isinstance(exc, DatabaseNotReady) else f" {VERBOSE_HINT}"
            raise click.ClickException(f"{explain(exc)}{hint}") from exc
