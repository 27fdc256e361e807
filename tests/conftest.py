"""Shared fixtures: a fixed clock, the trial's rules, stores (memory, SQLite, PostgreSQL), a real SMTP server."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.domain.grading import BloodPressureGrader
from safety_monitor.domain.rules import Ruleset
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory

ROOT = Path(__file__).resolve().parents[1]
RECIPIENTS = ("dsmb@example.org", "medical-monitor@example.org")
POSTGRES_URL = os.environ.get("SAFETY_MONITOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 5, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(now: datetime) -> FixedClock:
    return FixedClock(now)


# Pipeline-mechanics tests run on the walking skeleton's three rules, so they do not change whenever the trial's
# catalogue (rules/) grows; the catalogue is proven by its own cases (rules/tests, `safety-monitor rules test`).
SKELETON_RULES = ROOT / "tests" / "data" / "skeleton_rules"


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    return load_ruleset(SKELETON_RULES)


@pytest.fixture(scope="session")
def catalogue() -> Ruleset:
    """The trial's rule catalogue as shipped in rules/."""
    return load_ruleset(ROOT / "rules")


@pytest.fixture
def config(ruleset: Ruleset) -> PipelineConfig:
    return PipelineConfig(ruleset=ruleset, grader=BloodPressureGrader(), alert_recipients=RECIPIENTS)


@pytest.fixture
def rules_without_routing(tmp_path: Path) -> Path:
    """The skeleton's rules and no routing.yaml: every alert goes to ALERT_RECIPIENTS at once, one email each."""
    target = tmp_path / "rules-without-routing"
    shutil.copytree(SKELETON_RULES, target, ignore=shutil.ignore_patterns("routing.yaml", "routing.yml"))
    return target


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


async def _postgres_schema() -> str:
    """A fresh schema in the `test` database; PostgreSQL must answer (a failure here is a missing part)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"), timeout=10)
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await connection.close()
    return schema


async def _drop_schema(schema: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL, timeout=10)
    try:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await connection.close()


@dataclass
class Database:
    """A migrated database for one test: its URL (and PostgreSQL schema) and a store over it."""

    url: str
    store: SqlStore
    schema: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path}/safety.db", None
    else:
        url, schema = POSTGRES_URL, await _postgres_schema()
    engine = create_engine(url, schema=schema)
    await upgrade(engine)
    try:
        yield Database(url, SqlStore(engine), schema)
    finally:
        await engine.dispose()
        if schema:
            await _drop_schema(schema)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.fail_next = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_next:
            self.fail_next -= 1
            return "451 4.3.0 temporary failure, try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port; messages are parsed as they arrive."""
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


async def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UnitOfWorkFactory]:
    if request.param == "memory":
        yield MemoryStore()
        return
    schema = await _postgres_schema() if request.param == "postgresql" else None
    url = POSTGRES_URL if schema else f"sqlite:///{tmp_path}/p.db"
    engine = create_engine(url, schema=schema)
    await upgrade(engine)
    try:
        yield SqlStore(engine)
    finally:
        await engine.dispose()
        if schema:
            await _drop_schema(schema)
