"""Benchmark for the Kafka runtime on Apache Kafka: worker end to end vs a naive Faust Table agent vs raw aiokafka;
then latency at 1,000 msg/s, up to the email an SAE raises being accepted by an SMTP server.

All read the same pre-filled inbound topics (own consumer groups), the worker with the trial's catalogue, its routing
and its settings as configured by default. Needs KAFKA_BOOTSTRAP_SERVERS and PostgreSQL; `make bench-kafka` (and
`make bench`) start a fresh Apache Kafka broker for it. Latency: alert-raising SYSBP readings and fatal serious AEs
(routed to every receiver at once: deaths are never batched) mixed into a steady 1,000 msg/s stream; measured from
the publish to the commit of the transaction that raised the alert (a NOTIFY from a trigger this benchmark adds to
its own schema, delivered at commit), to the alert record's arrival from the alerts topic (published after the
commit), and, for the SAEs, to the first email naming the subject accepted by a real SMTP server (aiosmtpd, in this
process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiosmtpd.controller import Controller

from safety_monitor.demo import generate_load
from streams.topics import KafkaSettings, create_topics

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keyed(line: str, kafka: KafkaSettings) -> tuple[str, bytes, bytes]:
    doc = json.loads(line)
    return kafka.topics.for_msg_type(doc["msg_type"]), f"{doc['STUDYID']}:{doc['USUBJID']}".encode(), line.encode()


async def produce(bootstrap: str, items: list[tuple[str, bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in items]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consumer(bootstrap: str, topics: tuple[str, ...], expected: int) -> float:
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=10_000,
    )  # fmt: skip
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batch:
                started = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
        await consumer.commit()
        return time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()


NAIVE_AGENT = """
import pathlib, sys, time, faust
bootstrap, topics, expected, app_id = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
pathlib.Path("var/faust").mkdir(parents=True, exist_ok=True)
app = faust.App(app_id, broker="kafka://" + bootstrap, store="memory://", topic_partitions=4, web_enabled=False,
                datadir="var/faust/" + app_id,
                consumer_auto_offset_reset="earliest", broker_session_timeout=6, broker_heartbeat_interval=1,
                topic_disable_leader=True)
source = app.topic(*topics, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
counts = app.Table("per_subject", default=int, partitions=4)
state = {"seen": 0, "started": None}

@app.agent(source)
async def naive(stream):
    async for key, value in stream.items():
        if state["started"] is None:
            state["started"] = time.perf_counter()
        counts[key] += 1          # one Table write (and changelog record) per event
        state["seen"] += 1
        if state["seen"] == expected:
            print(f"RESULT {expected / (time.perf_counter() - state['started']):.1f}", flush=True)
            await app.stop()

faust.Worker(app, loglevel="warning", redirect_stdouts=False).execute_from_commandline()
"""


# Faust's own ceiling: the worker's batching (take_events, 5000 or what arrived within 50 ms) and nothing else.
EMPTY_BATCH_AGENT = NAIVE_AGENT.replace(
    """    async for key, value in stream.items():
        if state["started"] is None:
            state["started"] = time.perf_counter()
        counts[key] += 1          # one Table write (and changelog record) per event
        state["seen"] += 1
        if state["seen"] == expected:""",
    """    async for events in stream.take_events(5000, within=0.05):
        if state["started"] is None:
            state["started"] = time.perf_counter()
        state["seen"] += len(events)
        if state["seen"] >= expected:""",
)
assert EMPTY_BATCH_AGENT != NAIVE_AGENT


def naive_faust(bootstrap: str, topics: tuple[str, ...], expected: int, agent: str = NAIVE_AGENT) -> float:
    """Events/s of a Faust agent updating a Table per event (a changelog topic is created by Faust for it), or of
    `agent`."""
    app_id = f"bench-naive-{uuid.uuid4().hex[:6]}"
    process = subprocess.Popen(
        ["timeout", "-k", "5", "600", sys.executable, "-c", agent, bootstrap, ",".join(topics), str(expected),
         app_id],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        for line in process.stdout:  # the agent prints its rate; stopping Faust from inside an agent hangs
            if line.startswith("RESULT "):
                return float(line.split()[1])
    finally:
        os.killpg(process.pid, 9)
        process.wait()
    raise SystemExit("naive agent failed")


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = int(env["WORKER_WEB_PORT"])
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            ["timeout", "-k", "5", "1200", str(BIN / "safety-monitor"), "worker", "--loglevel", "warning"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/", timeout=2) as response:
                return dict(json.load(response))
        except OSError:
            return None

    async def ready(self) -> None:
        for _ in range(600):
            report = self.health()
            if report and report["consumer"]["lag"]:
                return
            if self.process.poll() is not None:
                raise SystemExit(f"worker exited; see {self.log.name}")
            await asyncio.sleep(0.1)
        raise SystemExit("worker not ready")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the worker process so far: what one worker costs, whatever else runs."""
        pids = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


async def inbox_count(database: str, schema: str) -> int:
    connection = await asyncpg.connect(database)
    try:
        return int(await connection.fetchval(f'SELECT count(*) FROM "{schema}".inbox'))
    finally:
        await connection.close()


def alert_reading(subject: int, at: datetime) -> str:
    return json.dumps(
        {
            "msg_id": str(uuid.uuid4()), "msg_type": "VS", "sent_at": at.isoformat(), "site_id": "900",
            "record_version": 1, "STUDYID": "BENCH", "USUBJID": f"BENCH-{subject:06d}", "VSTESTCD": "SYSBP",
            "VSSTRESN": 172, "VSSTRESU": "mmHg", "VSDTC": at.strftime("%Y-%m-%dT%H:%M"), "VSBLFL": None,
        }
    )  # fmt: skip


def fatal_sae(subject: int, at: datetime) -> str:
    """A fatal serious AE (grade 5): the `fatal-ae` rule's alert, emailed to every receiver without batching."""
    return json.dumps(
        {
            "msg_id": str(uuid.uuid4()), "msg_type": "AE", "sent_at": at.isoformat(), "site_id": "900",
            "record_version": 1, "STUDYID": "BENCH", "USUBJID": f"BENCH-{subject:06d}", "AESPID": "AE-1",
            "AETERM": "pneumonitis", "AEDECOD": "Pneumonitis", "AEBODSYS": "Respiratory, thoracic and mediastinal "
            "disorders", "AETOXGR": 5, "AESER": "Y", "AESHOSP": "Y", "AESDTH": "Y", "AESLIFE": "N",
            "AESTDTC": at.date().isoformat(), "AEENDTC": at.date().isoformat(), "AEOUT": "FATAL",
            "AEREL_ANLOTINIB": "POSSIBLE", "AEREL_ICI": "PROBABLE", "AEACN_ANLOTINIB": "DRUG WITHDRAWN",
            "AEACN_ICI": "DRUG WITHDRAWN", "AEIRAE": "Y",
        }
    )  # fmt: skip


class MailClock:
    """An aiosmtpd handler noting when an email naming each bench subject was first accepted (250 sent)."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.emails = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        accepted = time.perf_counter()
        content = envelope.content.decode("utf-8", "replace")
        with self._lock:
            self.emails += 1
            for subject in set(re.findall(r"BENCH-\d{6}", content)):
                self.first.setdefault(subject, accepted)
        return "250 OK"


NOTIFY_TRIGGER = """
CREATE FUNCTION "{schema}".bench_alert_committed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{channel}', NEW.msg_id); RETURN NEW; END $$;
CREATE TRIGGER bench_alert_committed AFTER INSERT ON "{schema}".alert_change
FOR EACH ROW EXECUTE FUNCTION "{schema}".bench_alert_committed();
"""


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    if not ordered:
        return float("nan"), float("nan")
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


@dataclass
class Latency:
    committed: tuple[float, float]  # (p50, p99) ms, publish -> alert committed
    published: tuple[float, float]  # publish -> alert record consumed from the alerts topic
    mailed: tuple[float, float]  # fatal SAE published -> first email naming its subject accepted by SMTP
    alerts: int  # alerts committed
    sent: int  # alert-raising messages published
    saes_mailed: int
    saes: int


async def latency(
    kafka: KafkaSettings, database: str, schema: str, rate: int, seconds: int, filler: list[str], mail: MailClock
) -> Latency:
    """Publish at a steady `rate`; every 10th message raises an alert, every 100th is a fatal SAE (instead of a
    reading)."""
    sent_at: dict[str, float] = {}
    sae_sent: dict[str, float] = {}
    committed: list[float] = []
    published: list[float] = []
    channel = f"{schema}_alerts"
    listener = await asyncpg.connect(database)
    await listener.execute(NOTIFY_TRIGGER.format(schema=schema, channel=channel))

    def on_commit(_connection: object, _pid: int, _channel: str, msg_id: str) -> None:
        if msg_id in sent_at:  # NOTIFY is delivered when the transaction that inserted the row commits
            committed.append(time.perf_counter() - sent_at[msg_id])

    await listener.add_listener(channel, on_commit)
    consumer = AIOKafkaConsumer(
        kafka.topics.alerts, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="latest",
        group_id=f"bench-lat-{uuid.uuid4().hex[:6]}", fetch_max_wait_ms=50,
    )  # fmt: skip
    await consumer.start()
    await asyncio.sleep(1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=0)
    await producer.start()

    async def collect() -> None:
        async for record in consumer:
            alert = json.loads(record.value)["alert"]
            if alert["msg_id"] in sent_at:
                published.append(time.perf_counter() - sent_at[alert["msg_id"]])

    collector = asyncio.create_task(collect())
    total = rate * seconds
    started = time.perf_counter()
    for n in range(total):
        if n % 100 == 0:
            line = fatal_sae(n, datetime.now(UTC))
        elif n % 10 == 0:
            line = alert_reading(n, datetime.now(UTC))
        else:
            line = filler[n % len(filler)]
        topic, key, value = keyed(line, kafka)
        if n % 10 == 0:
            sent_at[json.loads(line)["msg_id"]] = time.perf_counter()
        if n % 100 == 0:
            sae_sent[f"BENCH-{n:06d}"] = time.perf_counter()
        await producer.send(topic, value, key=key)
        delay = started + (n + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await producer.stop()
    deadline = time.perf_counter() + 30

    def mailed() -> int:
        return sum(1 for subject in sae_sent if subject in mail.first)

    while time.perf_counter() < deadline and (  # noqa: ASYNC110
        min(len(committed), len(published)) < len(sent_at) or mailed() < len(sae_sent)
    ):
        await asyncio.sleep(0.1)
    collector.cancel()
    await consumer.stop()
    await listener.close()
    to_mail = [mail.first[subject] - at for subject, at in sae_sent.items() if subject in mail.first]
    return Latency(
        percentiles(committed), percentiles(published), percentiles(to_mail), len(committed), len(sent_at),
        len(to_mail), len(sae_sent),
    )  # fmt: skip


PARTS = ("raw", "naive", "empty", "worker", "latency")


def project_broker() -> str:
    """The broker `make bench-kafka` starts: Apache Kafka, in the version kafka-broker/pom.xml resolves."""
    found = re.search(r"<kafka.version>([^<]+)<", (ROOT / "kafka-broker" / "pom.xml").read_text(encoding="utf-8"))
    return f"Apache Kafka {found.group(1) if found else '?'}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--broker-name", default=project_broker(), help="what the broker at KAFKA_BOOTSTRAP_SERVERS is (printed)"
    )
    parser.add_argument(
        "--delivery-interval", type=float, help="the worker's DELIVERY_INTERVAL (s); default: the worker's default"
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts to run (default all: {','.join(PARTS)})"
    )
    args = parser.parse_args()
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    if not parts <= set(PARTS):
        parser.error(f"--only: unknown part(s) {', '.join(sorted(parts - set(PARTS)))}; choose from {', '.join(PARTS)}")
    run = uuid.uuid4().hex[:6]
    schema = f"bench_{run}"
    smtp_port = free_port()
    env = {
        **os.environ, "KAFKA_PARTITIONS": "4", "KAFKA_APP_ID": f"bench-worker-{run}", "KAFKA_SESSION_TIMEOUT": "6",
        **{f"KAFKA_TOPIC_{n}": f"bench{run}.{n.lower()}" for n in ("AE", "LAB", "VITALS", "ECG", "SUBJECT")},
        "KAFKA_TOPIC_ALERTS": f"bench{run}.alerts", "KAFKA_TOPIC_DEADLETTER": f"bench{run}.deadletter",
        "DATABASE_URL": args.database, "DATABASE_SCHEMA": schema, "MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port), "MAIL_FROM": "safety-monitor@example.org",
        # rules/routing.yaml's receivers; with MAIL_BACKEND=smtp a reserved domain such as example.org is refused,
        # and every address here reaches only the benchmark's own SMTP server
        **{f"{r}_EMAILS": f"{r.lower()}@bench.internal" for r in ("MEDICAL_MONITOR", "DSMB", "SAFETY_PHYSICIAN")},
        "WORKER_WEB_PORT": str(free_port()),
    }  # fmt: skip
    if args.delivery_interval is not None:
        env["DELIVERY_INTERVAL"] = str(args.delivery_interval)
    mail = MailClock()
    smtp = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    kafka = KafkaSettings.from_env(env)
    create_topics(kafka)
    connection = await asyncpg.connect(args.database)
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    await connection.close()

    lines = list(generate_load(args.messages))
    items = [keyed(line, kafka) for line in lines]
    produce_s = await produce(kafka.bootstrap_servers, items)
    on = f" on {args.broker_name} ({kafka.bootstrap_servers})"
    print(f"messages: {len(items):,} on {len(kafka.topics.inbound)} topics x {kafka.partitions} partitions{on}")
    print(f"produce (aiokafka):          {len(items) / produce_s:>10,.0f} msg/s")

    raw_rate = naive_rate = worker_rate = None
    if "raw" in parts:
        raw_rate = len(items) / await raw_consumer(kafka.bootstrap_servers, kafka.topics.inbound, len(items))
        print(f"raw aiokafka consumer:       {raw_rate:>10,.0f} msg/s  (fetch only)")
    if "naive" in parts:
        naive_rate = naive_faust(kafka.bootstrap_servers, kafka.topics.inbound, len(items))
        print(f"naive Faust agent + Table:   {naive_rate:>10,.0f} events/s  (one Table update per event)")
    if "empty" in parts:
        empty_rate = naive_faust(kafka.bootstrap_servers, kafka.topics.inbound, len(items), EMPTY_BATCH_AGENT)
        print(f"Faust batch agent, no work:  {empty_rate:>10,.0f} msg/s  (take_events only: Faust's ceiling)")

    worker = None
    try:
        if parts & {"worker", "latency"}:
            log = Path(tempfile.mkdtemp(prefix="bench-worker-")) / "worker.log"
            worker = Worker(env, log)
            await worker.ready()
        if worker is not None and "worker" in parts:
            started, cpu_before = time.perf_counter(), worker.cpu_seconds()
            while await inbox_count(args.database, schema) < len(items):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            worker_rate = len(items) / (time.perf_counter() - started)
            cpu_ms = (worker.cpu_seconds() - cpu_before) * 1e6 / len(items)
            batches = ((worker.health() or {}).get("processed") or {}).get("batches") or 0
            print(f"worker end to end (PG):      {worker_rate:>10,.0f} msg/s  (decode, grade, rules, commit, ack)")
            print(f"  {batches:,} batches; worker CPU {cpu_ms:.0f} us per message (one core: <= {1e6 / cpu_ms:,.0f}/s)")
        if worker is not None and "latency" in parts:
            if "worker" not in parts:  # the backlog first, so the latency run starts on an idle worker
                while await inbox_count(args.database, schema) < len(items):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            result = await latency(kafka, args.database, schema, args.rate, args.seconds, lines[:5000], mail)
            done, published, mailed = result.committed, result.published, result.mailed
            verdict = "meets" if done[1] < 500 else "ABOVE"
            interval = env.get("DELIVERY_INTERVAL", "default")
            print(f"latency at {args.rate:,} msg/s ({result.alerts:,} of {result.sent:,} alerts):")
            print(f"  publish -> alert committed:            p50 {done[0]:>5.0f} ms  p99 {done[1]:>5.0f} ms"
                  f"  ({verdict} target p99 < 500 ms)")  # fmt: skip
            print(f"  publish -> alert record on the topic:  p50 {published[0]:>5.0f} ms  p99 {published[1]:>5.0f} ms")
            print(f"  SAE published -> email accepted (SMTP): p50 {mailed[0]:>5.0f} ms  p99 {mailed[1]:>5.0f} ms"
                  f"  ({result.saes_mailed} of {result.saes} fatal SAEs; DELIVERY_INTERVAL {interval})")  # fmt: skip
    finally:
        if worker is not None:
            worker.stop()
        smtp.stop()
        connection = await asyncpg.connect(args.database)
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()

    if worker_rate is not None and (naive_rate or raw_rate):
        print("ratios (same topics, same messages):")
    if worker_rate is not None and naive_rate:
        verdict = "meets" if worker_rate >= 10 * naive_rate else "BELOW"
        print(f"  worker / naive Faust agent:  {worker_rate / naive_rate:>8.1f} x  ({verdict} target >= 10 x)")
    if worker_rate is not None and raw_rate:
        print(f"  raw aiokafka / worker:       {raw_rate / worker_rate:>8.0f} x")


if __name__ == "__main__":
    asyncio.run(main())
