"""Kafka fixtures: two real brokers (each started here when its variable is unset), worker processes, parity helpers.

`stack` runs on noida-db (KAFKA_BOOTSTRAP_SERVERS), the faithful one for offsets, lag and restarts; `tansu_stack`
runs on Tansu (TANSU_BOOTSTRAP_SERVERS), whose group coordinator survives members joining and leaving under load.
Nothing here skips: a broker that cannot be started or does not answer fails the tests. Known defects stay out of
the assertions: on noida-db every test has its own consumer group and topics and every worker joins before traffic
flows (a member joining a busy group can hang its coordinator); on Tansu nothing asserts offsets or lag (it reports
wrong end offsets). See README "Tests and benchmarks".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
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

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer

BIN = Path(sys.executable).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: runs against a real Kafka-protocol broker (fails, never skips)")


WORKER_TIMEOUT_S = 240  # a stuck worker is killed by `timeout -k`, never hangs CI


def answers(address: str) -> bool:
    """Whether a Kafka-protocol broker answers an ApiVersions request at `address` (the scripts' readiness probe)."""
    probe = [str(BIN / "python"), str(ROOT / "scripts" / "kafka-ready.py"), address]
    return subprocess.run(probe, timeout=30, check=False).returncode == 0


def _broker(variable: str, script: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The broker `make test` started and exported in `variable`, or one started here with `script` for the session.
    Either way it must answer a Kafka ApiVersions request, or every test using it fails."""
    if os.environ.get(variable):
        address = os.environ[variable]
        assert answers(address), f"{variable}={address}: no Kafka ApiVersions answer (start it: scripts/{script})"
        yield address
        return
    directory = tmp_path_factory.mktemp(script.removesuffix(".sh"))
    command = ["bash", str(ROOT / "scripts" / script)]
    broker_env = {**os.environ, "VENV_BIN": str(BIN)}
    started = subprocess.run(
        [*command, "start", str(directory)], capture_output=True, text=True, timeout=60, env=broker_env
    )
    assert started.returncode == 0, f"the test broker did not start (scripts/{script}): {started.stderr}"
    address = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        yield address
    finally:
        subprocess.run([*command, "stop", str(directory)], timeout=60, env=broker_env, check=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """noida-db: correct offsets and lag, survives restarts; a member joining a busy group can hang its group."""
    yield from _broker("KAFKA_BOOTSTRAP_SERVERS", "kafka-broker.sh", tmp_path_factory)


@pytest.fixture(scope="session")
def tansu_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Tansu: members may join and leave under load; end offsets (lag) are wrong, memory only, no transactions."""
    yield from _broker("TANSU_BOOTSTRAP_SERVERS", "tansu-broker.sh", tmp_path_factory)


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


class WorkerProcess:
    """`safety-monitor worker` in its own process group, under `timeout -k` so it can never hang the run."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = int(env["WORKER_WEB_PORT"])
        self.log_path = log_path
        self._log = log_path.open("ab")
        command = ["timeout", "-k", "5", str(WORKER_TIMEOUT_S), str(BIN / "safety-monitor"), "worker"]
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/", timeout=2) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:  # 503 while starting or stuck: still a JSON report
            try:
                return dict(json.load(exc))
            except ValueError:
                return None
        except OSError:
            return None

    async def ready(self, seconds: float = 60) -> dict[str, Any]:
        """Wait until the worker serves health and holds partitions."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited {self.process.returncode}: {self.tail()}")
            report = await asyncio.to_thread(self.health)
            if report and report["consumer"]["lag"]:
                return report
            await asyncio.sleep(0.2)
        raise AssertionError(f"worker {self.name} not ready in {seconds} s: {self.tail()}")

    @property
    def pid(self) -> int:
        """The worker's own pid (the child of `timeout`), as its health report names it."""
        report = self.health()
        assert report is not None, self.tail()
        return int(report["holder"].split(":")[1])

    def terminate(self, seconds: float = 60) -> int:
        os.kill(self.pid, signal.SIGTERM)
        return self.wait(seconds)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.wait(10)

    def wait(self, seconds: float) -> int:
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise AssertionError(f"worker {self.name} did not stop in {seconds} s: {self.tail()}") from None
        finally:
            self._log.close()

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if not self._log.closed:
            self._log.close()

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
async def stack(kafka_bootstrap: str, smtp_server: SmtpServer, tmp_path: Path) -> AsyncIterator[Stack]:
    """A test's world on noida-db."""
    async with _stack(kafka_bootstrap, smtp_server, tmp_path) as world:
        yield world


@pytest.fixture
async def tansu_stack(tansu_bootstrap: str, smtp_server: SmtpServer, tmp_path: Path) -> AsyncIterator[Stack]:
    """A test's world on Tansu: for members joining or leaving while traffic flows. Assert nothing on offsets/lag."""
    async with _stack(tansu_bootstrap, smtp_server, tmp_path) as world:
        yield world


@contextlib.asynccontextmanager
async def _stack(bootstrap: str, smtp_server: SmtpServer, tmp_path: Path) -> AsyncIterator[Stack]:
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
    mailed = {m["Message-ID"] for m in stack.smtp.inbox.messages}
    return pending == 0 and bool(ids) and {f"<{i}@example.org>" for i in ids} <= mailed


async def processed_all(stack: Stack, expected_inbox: int) -> bool:
    return await stack.count("inbox") >= expected_inbox and await stack.count("dead_letter") > 0
