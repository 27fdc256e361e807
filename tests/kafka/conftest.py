"""Kafka fixtures: Apache Kafka (the broker `make test` started, or one started here), worker processes, parity.

Every test runs on Apache Kafka 4 (kafka/pom.xml, scripts/kafka-broker.sh), with its own topics and consumer group
so tests cannot see each other's offsets. Nothing here skips: a broker that cannot be started or does not answer
fails the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from safety_monitor.adapters.mail import CaptureMailer
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.bootstrap import bootstrap
from safety_monitor.demo import SyntheticTrial, generate_trial
from safety_monitor.service.views import incidence_table
from safety_monitor.settings import Settings
from streams.embedded import file_source, run_source
from streams.topics import KafkaSettings, create_topics
from tests.conftest import POSTGRES_URL, RECIPIENTS, ROOT, SmtpServer, _drop_schema, _postgres_schema, free_port
from tests.kafka.workers import WorkerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError
    from kafka.structs import TopicPartition

BIN = Path(sys.executable).parent
BROKER_SCRIPT = ROOT / "scripts" / "kafka-broker.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: runs against a real Apache Kafka broker (fails, never skips)")


BROKER_START_S = 420  # the first start on a fresh machine resolves Kafka from Maven Central (aim: 300 s)


def answers(address: str) -> bool:
    """Whether a Kafka broker answers an ApiVersions request at `address` (the broker script's readiness probe)."""
    probe = [str(BIN / "python"), str(ROOT / "scripts" / "kafka-ready.py"), address]
    return subprocess.run(probe, timeout=30, check=False).returncode == 0


class Broker:
    """An Apache Kafka broker this test session started with scripts/kafka-broker.sh in its own directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.address = self._run("start", BROKER_START_S)

    def _run(self, action: str, seconds: float) -> str:
        done = subprocess.run(
            ["bash", str(BROKER_SCRIPT), action, str(self.directory)],
            capture_output=True,
            text=True,
            timeout=seconds,
            check=False,
        )
        assert done.returncode == 0, f"scripts/kafka-broker.sh {action} failed: {done.stderr}"
        if action == "stop":
            return self.address
        last = done.stdout.strip().splitlines()[-1]
        assert last.startswith("KAFKA_BOOTSTRAP_SERVERS="), done.stdout
        return last.split("=", 1)[1]

    def restart(self) -> None:
        """SIGTERM (controlled shutdown), then the same data and port again."""
        assert self._run("restart", 300) == self.address

    def crash(self) -> None:
        """SIGKILL (no shutdown, unflushed segments), then the same data and port again: Kafka recovers its logs."""
        assert self._run("crash", 300) == self.address

    def stop(self) -> None:
        self._run("stop", 120)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The broker `make test` started and exported in KAFKA_BOOTSTRAP_SERVERS, or one started here for the session.
    Either way it must answer, or every test using it fails."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        address = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        assert answers(address), f"KAFKA_BOOTSTRAP_SERVERS={address}: no Kafka answer (start one: make kafka-up)"
        yield address
        return
    broker = Broker(tmp_path_factory.mktemp("kafka-broker"))
    try:
        yield broker.address
    finally:
        broker.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own, for tests that stop or crash it (the session's broker stays up for the rest)."""
    broker = Broker(tmp_path / "kafka-broker")
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Stack:
    """One test's world: own topics and consumer group on the broker, a fresh PostgreSQL schema, an SMTP server."""

    env: dict[str, str]
    kafka: KafkaSettings
    store: SqlStore
    smtp: SmtpServer
    logs: Path

    def worker(self, name: str = "w1", **extra: str) -> WorkerProcess:
        env = {**self.env, "WORKER_WEB_PORT": str(free_port()), **extra}
        return WorkerProcess(name, env, self.logs / f"{name}.log")

    def produce(self, items: list[tuple[str, bytes, bytes]]) -> None:
        producer = KafkaProducer(bootstrap_servers=self.kafka.bootstrap_servers, acks="all")
        for topic, key, value in items:
            producer.send(topic, key=key, value=value)
        producer.flush()
        producer.close()

    def consume_all(self, topic: str, expected: int, seconds: float = 20) -> list[Any]:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=self.kafka.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=int(seconds * 1000),
        )
        records = []
        try:
            for record in consumer:
                records.append(record)
                if len(records) >= expected:
                    break
        finally:
            consumer.close()
        return records

    def committed_offsets(self, seconds: float = 60) -> dict[str, int]:
        """The consumer group's committed offsets on the inbound topics, as the broker's group coordinator has them
        (asked again while the coordinator is still loading them, e.g. right after a broker restart)."""
        deadline = time.monotonic() + seconds
        while True:
            admin = KafkaAdminClient(bootstrap_servers=self.kafka.bootstrap_servers)
            try:
                offsets = admin.list_group_offsets(self.kafka.app_id)[self.kafka.app_id]
                break
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                admin.close()
        inbound = self.kafka.topics.inbound
        return {f"{tp.topic}[{tp.partition}]": meta.offset for tp, meta in offsets.items() if tp.topic in inbound}

    def end_offsets(self) -> dict[str, int]:
        """Every inbound partition's end offset (ListOffsets latest): what a caught-up group has committed."""
        consumer = KafkaConsumer(bootstrap_servers=self.kafka.bootstrap_servers)
        try:
            partitions = [TopicPartition(t, p) for t in self.kafka.topics.inbound for p in range(self.kafka.partitions)]
            ends = consumer.end_offsets(partitions)
        finally:
            consumer.close()
        return {f"{tp.topic}[{tp.partition}]": int(offset) for tp, offset in ends.items()}

    def publish_file(self, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "safety-monitor"), "publish", str(path), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    async def count(self, table: str) -> int:
        async with self.store.engine.connect() as connection:
            return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


@pytest.fixture
async def stack(kafka_bootstrap: str, smtp_server: SmtpServer, tmp_path: Path) -> AsyncIterator[Stack]:
    """A test's world on the session's broker."""
    async with make_stack(kafka_bootstrap, smtp_server, tmp_path) as world:
        yield world


@contextlib.asynccontextmanager
async def make_stack(bootstrap: str, smtp_server: SmtpServer, tmp_path: Path) -> AsyncIterator[Stack]:
    run = uuid.uuid4().hex[:8]
    schema = await _postgres_schema()
    rules_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules_dir, ignore=shutil.ignore_patterns("routing.yaml", "routing.yml"))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_APP_ID": f"sm-test-{run}",
        "KAFKA_PARTITIONS": "4",
        "KAFKA_SESSION_TIMEOUT": "6",  # heartbeat every 1 s: joins and takeovers take seconds, not 30 s
        "KAFKA_BATCH_WITHIN": "0.1",
        "DELIVERY_INTERVAL": "0.5",
        **{f"KAFKA_TOPIC_{n}": f"t{run}.{n.lower()}" for n in ("AE", "LAB", "VITALS", "ECG", "SUBJECT")},
        "KAFKA_TOPIC_ALERTS": f"t{run}.alerts",
        "KAFKA_TOPIC_DEADLETTER": f"t{run}.deadletter",
        "DATABASE_URL": POSTGRES_URL,
        "DATABASE_SCHEMA": schema,
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "MAIL_FROM": "safety-monitor@example.org",
        "ALERT_RECIPIENTS": ",".join(RECIPIENTS),
        # The trial's catalogue without routing.yaml: alerts go to ALERT_RECIPIENTS at once, so the tests need
        # not wait for routing's group_wait (routing itself is proven in tests/integration/test_routing_*).
        "SAFETY_MONITOR_RULES_DIR": str(rules_dir),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    kafka = KafkaSettings.from_env(env)
    await asyncio.to_thread(create_topics, kafka)
    engine = create_engine(POSTGRES_URL, schema=schema)
    await upgrade(engine)
    try:
        yield Stack(env, kafka, SqlStore(engine), smtp_server, tmp_path)
    finally:
        await engine.dispose()
        await _drop_schema(schema)


@pytest.fixture(scope="module")
def trial() -> SyntheticTrial:
    """The synthetic trial the Kafka tests publish: 20 subjects over 60 days, invalid lines included."""
    return generate_trial(subjects=20, days=60)


@pytest.fixture
def trial_file(trial: SyntheticTrial, tmp_path: Path) -> Path:
    path = tmp_path / "trial.jsonl"
    path.write_text("\n".join(trial.lines) + "\n", encoding="utf-8")
    return path


async def wait_until(condition: Any, seconds: float = 60, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if await condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met in {seconds} s")
        await asyncio.sleep(0.25)


async def results(store: SqlStore) -> dict[str, Any]:
    """What two runtimes must agree on: incidence, rule hits, alerts, notices (ids are content-derived)."""
    queries = {
        # Every hit row by row, pattern hits included: a pattern hit is identified by its occurrence in event time
        # (the measurement), so batches cut anywhere (the SBP and DBP of one reading apart) give the same rows.
        "hits": (
            "SELECT rule_id, study_id, subject_id, occurrence, msg_id, alert_key, grade, observed_on, detail "
            "FROM rule_hit"
        ),
        "alerts": "SELECT alert_key, rule_id, grade, status FROM alert",
        "notices": "SELECT notice_id, alert_key, kind FROM outbox",
        "inbox": "SELECT msg_id, content_hash FROM inbox",
        "dead_letters": "SELECT payload_hash, reason FROM dead_letter",
    }
    found: dict[str, Any] = {}
    async with store.engine.connect() as connection:
        for name, query in queries.items():
            found[name] = sorted(tuple(row) for row in await connection.execute(text(query)))
    found["incidence"] = sorted(
        (r.study_id, r.soc, r.pt, r.grade_band, r.subjects, r.denominator) for r in await incidence_table(store)
    )
    return found


# What both runtimes must agree on. Outbox notices are not compared: routing groups alerts into notices on its own
# schedule (group_wait), so which notices exist at a given moment depends on time, not on the runtime.
PARITY = ("incidence", "hits", "alerts", "inbox", "dead_letters")


async def embedded_results(path: Path, tmp_path: Path) -> dict[str, Any]:
    """The same file through the embedded runtime (SQLite): the reference the Kafka runtime must match."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/embedded.db",
        rules_dir=ROOT / "rules",
        templates_dir=ROOT / "templates",
        alert_recipients=RECIPIENTS,
    )
    app = bootstrap(settings, mailer=CaptureMailer(tmp_path / "embedded-mail"))
    await app.start()
    try:
        await run_source(app, file_source(path))
        assert isinstance(app.store, SqlStore)
        return await results(app.store)
    finally:
        await app.close()


async def all_mailed(stack: Stack) -> bool:
    """No notification still waits to be put in an email, and every email has reached the SMTP server."""
    async with stack.store.engine.connect() as connection:
        pending = (await connection.execute(text("SELECT count(*) FROM notification WHERE state = 'pending'"))).scalar()
        ids = {row[0] for row in await connection.execute(text("SELECT notice_id FROM outbox"))}
    if pending or not ids or len(stack.smtp.inbox.messages) < len(ids):
        return False  # before reading thousands of parsed headers, which would starve the SMTP server's thread
    mailed = {m["Message-ID"] for m in stack.smtp.inbox.messages}
    return {f"<{i}@example.org>" for i in ids} <= mailed


async def processed_all(stack: Stack, expected_inbox: int) -> bool:
    return await stack.count("inbox") >= expected_inbox and await stack.count("dead_letter") > 0
