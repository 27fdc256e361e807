"""Owns the Kafka runtime: the faust-streaming app, its batch agent, alert/dead-letter publishing, health, worker.

One agent consumes the five co-partitioned inbound topics together (keyed `STUDYID:USUBJID`, so a worker owns a
subject on every topic at once) in batches (`stream.take_events`). Each batch is decoded with the wire schemas and
handed to `handle_batch` (one database transaction); only after it returns are the events acknowledged, and Faust
commits acknowledged offsets after flushing its producer. Faust is at-least-once: the inbox makes redelivery
harmless. State lives in SQL, never in Faust tables. Scheduled work runs through the SQL-leased scheduler.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import faust
from faust import Stream
from faust.exceptions import ConsumerNotStarted
from faust.sensors import Monitor
from faust.types import TP, EventT, StreamT
from faust.web import Request, Response, View

from safety_monitor.bootstrap import App
from safety_monitor.service.handling import handle_batch
from safety_monitor.service.publications import ALERTS, mark_published, outcome_publications, publish_pending
from safety_monitor.service.records import BatchOutcome, InboundMessage, Publication, RejectedMessage
from safety_monitor.service.reload import install_sighup_reload
from safety_monitor.service.scheduler import ScheduledJob
from safety_monitor.service.views import delivery_health
from safety_monitor.settings import PID_FILE
from streams.decoding import decode
from streams.embedded import to_service
from streams.topics import KafkaSettings

log = logging.getLogger(__name__)

EXIT_UNCOMMITTABLE = 70  # a batch could not be committed: exit without acknowledging, so it is redelivered
FAUST_DATA_DIR = Path("var/faust")  # relative: beside var/safety-monitor-worker.pid, in the working directory


def origin_of(event: EventT[Any]) -> str:
    message = event.message
    return f"{message.topic}[{message.partition}]@{message.offset}"


@dataclass
class WorkerStats:
    """What the health endpoint reports besides the consumer's own figures."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    batches: int = 0
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    last_db_commit_at: datetime | None = None
    published_alerts: int = 0
    published_dead_letters: int = 0
    stuck_since: datetime | None = None  # a batch keeps failing to commit


class CommitMonitor(Monitor):
    """Faust's monitor, also noting when offsets were committed (Faust commits only what this runtime acked)."""

    last_commit_at: datetime | None = None

    def on_tp_commit(self, tp_offsets: Any) -> None:
        super().on_tp_commit(tp_offsets)
        self.last_commit_at = datetime.now(UTC)


class KafkaRuntime:
    """The batch agent's body and what it needs: the wired core app, the settings, the outbound topics."""

    def __init__(self, core: App, kafka: KafkaSettings, app: faust.App, holder: str) -> None:
        self.core = core
        self.kafka = kafka
        self.app = app
        self.holder = holder
        self.stats = WorkerStats()
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        self.inbound = app.topic(*kafka.topics.inbound, **raw)
        self.alerts = app.topic(kafka.topics.alerts, **raw)
        self.deadletter = app.topic(kafka.topics.deadletter, **raw)
        # Routed delivery (silences, inhibition, grouping), reminders and digests: the same jobs and scheduler as
        # the embedded `serve`, each run once per slot across all workers.
        # Alert and dead-letter records are stored in each batch's transaction and sent after its commit; what a
        # crash or a broker outage left unsent is sent by this job (service/publications.py).
        core.pipeline = replace(core.pipeline, publish=True)
        catch_up = ScheduledJob("publish-pending", timedelta(seconds=10), self._publish_pending, timedelta(minutes=2))
        self.scheduler = core.scheduler(holder, timedelta(seconds=kafka.delivery_interval), [catch_up])

    async def process(self, stream: StreamT[bytes]) -> None:
        """The agent: batch, decode, handle + commit (DB), publish, and only then acknowledge (leave the body)."""
        batches = cast(Stream[bytes], stream).take_events(self.core.settings.batch_size, within=self.kafka.batch_within)
        async for events in batches:
            now = self.core.clock.now()
            batch = [to_service(decode(e.value or b"", origin_of(e), now=now)) for e in events]
            work = asyncio.ensure_future(self._commit_and_publish(batch))
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                # SIGTERM while a batch is in flight: finish it (commit) before the stream acknowledges it.
                log.info("stopping: draining the batch in flight size=%d", len(batch))
                await self._drain(work)
                raise
            except BaseException:
                _exit_unacknowledged("batch could not be committed")

    async def _drain(self, work: asyncio.Future[None]) -> None:
        try:
            await work
        except BaseException:
            _exit_unacknowledged("stopping with an uncommitted batch")

    async def _commit_and_publish(self, batch: Sequence[InboundMessage | RejectedMessage]) -> None:
        outcome = await self._commit(batch)
        await self._publish(outcome)
        self.stats.batches += 1
        self.stats.outcome.add(replace(outcome.totals(), dead_letter_reasons=[]))

    async def _commit(self, batch: Sequence[InboundMessage | RejectedMessage]) -> BatchOutcome:
        """`handle_batch` retries and isolates poison messages itself; it raises only when the store is away.
        Then keep trying for a while (health shows it), and give up by exiting without acknowledging."""
        delay = 0.5
        for attempt in range(1, 9):
            try:
                outcome = await handle_batch(self.core.store, batch, self.core.pipeline, self.core.clock)
            except Exception:
                self.stats.stuck_since = self.stats.stuck_since or datetime.now(UTC)
                log.exception("batch not committed size=%d attempt=%d; retrying in %.1f s", len(batch), attempt, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.stats.stuck_since = None
            self.stats.last_db_commit_at = datetime.now(UTC)
            return outcome
        raise RuntimeError(f"batch of {len(batch)} not committed after retries")

    async def _publish(self, outcome: BatchOutcome) -> None:
        """After the DB commit: the batch's alert records to the alerts topic and refusals to the dead-letter topic
        (the records its transaction stored), then mark them sent. If this fails or the process dies first, the
        `publish-pending` job sends them later: a publication is delayed, never lost."""
        publications = outcome_publications(outcome)
        await self._send(publications)
        await mark_published(self.core.store, publications, datetime.now(UTC))

    async def _send(self, publications: Sequence[Publication]) -> None:
        for publication in publications:
            topic = self.alerts if publication.stream == ALERTS else self.deadletter
            await topic.send(key=publication.key.encode(), value=publication.value.encode())
        if publications:
            await self.app.producer.flush()
        alerts = sum(1 for p in publications if p.stream == ALERTS)
        self.stats.published_alerts += alerts
        self.stats.published_dead_letters += len(publications) - alerts

    async def _publish_pending(self, now: datetime) -> int:
        sent = await publish_pending(self.core.store, self._send, now)
        if sent:
            log.warning("sent %d topic publications left unsent by an earlier batch or worker", sent)
        return sent

    async def run_scheduler(self) -> None:
        # SIGHUP (`safety-monitor rules reload`) reloads rules and routing together; a broken reload keeps both.
        install_sighup_reload(self.core.configuration_holder(), self.core.clock)
        await self.scheduler.run_until_cancelled()  # a stop lets the delivery pass in flight finish

    async def health(self) -> dict[str, Any]:
        consumer, monitor = self.app.consumer, self.app.monitor
        lag: dict[str, int | None] = {}
        committed_now: dict[TP, int | None] = getattr(consumer, "_committed_offset", {})
        try:
            assignment = sorted(consumer.assignment())
            consumer_state = "running"
        except ConsumerNotStarted:  # starting up or shutting down: say so, never fail the health check itself
            assignment, consumer_state = [], "not started"
        for tp in assignment:
            if tp.topic not in self.kafka.topics.inbound:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # not fetched yet
                highwater = None
            committed = committed_now.get(tp)
            name = f"{tp.topic}[{tp.partition}]"
            lag[name] = None if highwater is None else max(highwater - (committed or 0), 0)
        delivery = await delivery_health(self.core.store, self.core.clock.now())
        outbox = delivery.as_dict()
        async with self.core.store() as uow:
            unpublished = await uow.publications.backlog()
        leases = await self.scheduler.states()
        known = [v for v in lag.values() if v is not None]
        status = "stuck" if self.stats.stuck_since else delivery.status
        if consumer_state != "running" and status == "ok":
            status = "starting"
        o = self.stats.outcome
        return {
            "status": status,
            "holder": self.holder,
            "consumer": {"group": self.kafka.app_id, "state": consumer_state, "lag": lag, "total_lag": sum(known)},
            "last_commit": {
                "database": _iso(self.stats.last_db_commit_at),
                "offsets": _iso(monitor.last_commit_at if isinstance(monitor, CommitMonitor) else None),
                "committed_offsets": {
                    f"{tp.topic}[{tp.partition}]": offset for tp, offset in sorted(monitor.tp_committed_offsets.items())
                },
                "stuck_since": _iso(self.stats.stuck_since),
            },
            "outbox": outbox,
            "processed": {
                "batches": self.stats.batches,
                "received": o.received,
                "applied": o.applied,
                "duplicates": o.duplicates,
                "dead_lettered": o.dead_lettered,
                "handler_failures": o.handler_failures,
                "alerts_published": self.stats.published_alerts,
                "dead_letters_published": self.stats.published_dead_letters,
            },
            # alert and dead-letter records committed but not yet on their topics (sent by publish-pending)
            "unpublished": unpublished,
            "scheduler": [
                {"job": s.job, "slot": s.slot, "holder": s.holder, "done_at": _iso(s.done_at)} for s in leases
            ],
        }


def create_faust_app(core: App, kafka: KafkaSettings, *, holder: str | None = None) -> tuple[faust.App, KafkaRuntime]:
    """Build the Faust app (no I/O until a worker starts it)."""
    app = faust.App(
        kafka.app_id,
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        store="memory://",
        # Faust keeps a data directory even with in-memory tables, by default "<app id>-data" in the working
        # directory beside the operator's files; with the runtime's other files instead (run_worker creates it).
        datadir=str(FAUST_DATA_DIR / kafka.app_id),
        autodiscover=False,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_allow_declare=False,  # Faust declares nothing: `safety-monitor topics create` does, explicitly
        topic_disable_leader=True,  # no leader topic: scheduled work is leased in SQL
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=kafka.session_timeout,
        broker_heartbeat_interval=max(kafka.session_timeout / 6, 0.5),
        # a member killed without leaving holds a rebalance until this expires (default 60 s): keep it short
        broker_rebalance_timeout=kafka.session_timeout * 2,
        broker_commit_interval=kafka.commit_interval,
        producer_acks=-1,
        stream_wait_empty=True,
        web_enabled=True,
        web_bind=kafka.web_host,
        web_host=kafka.web_host,
        web_port=kafka.web_port,
        web_tables_enabled=False,  # no clinical data over HTTP without authentication
        web_cors_options={},
        Monitor=CommitMonitor,
    )
    runtime = KafkaRuntime(core, kafka, app, holder or worker_id())
    app.agent(runtime.inbound, name="safety_monitor.batches")(runtime.process)
    app.task(runtime.run_scheduler)

    async def health(view: View, request: Request) -> Response:
        report = await runtime.health()
        # 503 for an overdue alert email too: a monitor that cannot reach anyone must page its operator.
        unhealthy = ("stuck", "starting", "overdue-notices")
        return view.json(report, status=503 if report["status"] in unhealthy else 200)

    app.page("/health/")(health)
    return app, runtime


def write_pid_file(path: Path) -> None:
    """Record this worker's pid for `rules reload`; removed again when the process exits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n", encoding="utf-8")
    atexit.register(lambda: path.unlink(missing_ok=True))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def run_worker(core: App, kafka: KafkaSettings, *, loglevel: str = "info") -> None:
    """Run a worker until SIGTERM/SIGINT (drains the batch in flight, commits, exits). Blocks; exits the process."""
    asyncio.run(_prepare(core))
    FAUST_DATA_DIR.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app, _runtime = create_faust_app(core, kafka)
    worker = faust.Worker(app, loglevel=loglevel, loop=loop, redirect_stdouts=False)
    write_pid_file(PID_FILE)
    # Everything loaded so far (Faust, SQLAlchemy, the rules and criteria) lives as long as the process: keep it
    # out of the collector's full passes, which otherwise stall the event loop for ~70-140 ms every second or two
    # under load (measured with gc.callbacks during bench_kafka.py's latency run).
    gc.collect()
    gc.freeze()
    log.info("worker starting group=%s topics=%s", kafka.app_id, ",".join(kafka.topics.inbound))
    worker.execute_from_commandline()


async def _prepare(core: App) -> None:
    await core.start()  # migrations
    await core.close()  # the pool is bound to this loop; the worker's loop opens its own connections


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _exit_unacknowledged(reason: str) -> None:
    """Leave without acknowledging: Faust would otherwise ack the batch when its stream generator closes."""
    log.critical("%s: exiting without acknowledging; the batch will be redelivered", reason)
    logging.shutdown()
    os._exit(EXIT_UNCOMMITTABLE)
