"""Workers joining and leaving a busy consumer group (Tansu): nothing lost, nothing doubled, the embedded results.

These run on Tansu, not noida-db: noida-db's group coordinator can hang for good when a member joins while another
commits offsets, which is exactly what happens when a worker is added under traffic. Tansu rebalances soundly but
reports wrong end offsets (ListOffsets latest), so nothing here asserts offsets or lag: the assertions are on the
database, which is what the runtime contract promises. A rebalance hands a partition over with whatever was already
committed to the database but not yet offset-committed; the new owner receives it again and the inbox (one row per
msg_id, checked in the batch's own transaction) recognises it, so redelivery is harmless. The proof is that the
database ends up identical to the embedded runtime's for the same file.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from safety_monitor.demo import SyntheticTrial
from streams.publish import producer, publish_lines
from streams.topics import KafkaSettings
from streams.wire import Decoded, decode
from tests.kafka.conftest import (
    PARITY,
    Stack,
    WorkerProcess,
    all_mailed,
    embedded_results,
    processed_all,
    results,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.smtp]

PARTITIONS_HELD = 20  # 5 inbound topics x KAFKA_PARTITIONS=4, split between the members of the group
PER_SECOND = 30  # steady traffic: the 923-line trial takes ~30 s, several times what a worker needs to start and join
HOLD_AT = 0.85  # the last 15 % waits until the membership change is complete, so traffic also follows it


class SteadyPublisher:
    """Publishes a trial's lines at a steady rate from a thread (what a site does), invalid lines included so the
    dead-letter path runs too. It pauses at `hold_at` until `release()`, and stops early on `stop()`."""

    def __init__(self, kafka: KafkaSettings, lines: tuple[str, ...], per_second: int, hold_at: float) -> None:
        self.kafka = kafka
        self.lines = lines
        self.per_second = per_second
        self.hold_at = int(len(lines) * hold_at)
        self.sent = 0
        self._released = threading.Event()
        self._stopped = threading.Event()

    def run(self) -> None:
        client = producer(self.kafka)
        try:
            started = time.monotonic()
            for chunk in self._chunks(size=max(self.per_second // 10, 1)):
                if self.sent >= self.hold_at and not self._released.is_set():
                    assert self._released.wait(180), "the publisher was never released"
                    started = time.monotonic() - self.sent / self.per_second
                if self._stopped.is_set():
                    return
                publish_lines(self.kafka, chunk, send_invalid=True, client=client)
                self.sent += len(chunk)
                ahead = started + self.sent / self.per_second - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            client.close()

    def _chunks(self, size: int) -> Iterator[list[tuple[str, str]]]:
        numbered = [(line, f"trial.jsonl:{n}") for n, line in enumerate(self.lines, start=1)]
        for start in range(0, len(numbered), size):
            yield numbered[start : start + size]

    @property
    def done(self) -> bool:
        return self.sent == len(self.lines)

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self._stopped.set()
        self._released.set()


async def test_a_second_worker_joining_under_traffic_loses_and_doubles_nothing(
    tansu_stack: Stack, trial: SyntheticTrial, trial_file: Path, tmp_path: Path
) -> None:
    stack = tansu_stack
    reference = await embedded_results(trial_file, tmp_path)
    publisher = SteadyPublisher(stack.kafka, trial.lines, PER_SECOND, HOLD_AT)
    a = stack.worker("a")
    b: WorkerProcess | None = None
    publishing: asyncio.Future[None] | None = None
    try:
        await a.ready()
        publishing = asyncio.ensure_future(asyncio.to_thread(publisher.run))
        await wait_until(lambda: _true(publisher.sent >= len(trial.lines) // 5), what="a fifth of the trial published")
        sent_when_b_started = publisher.sent
        b = stack.worker("b")  # the join under load
        await b.ready()
        await wait_until(lambda: _true(_split(a, b)), seconds=60, what="partitions split between a and b")
        # the join happened under traffic: messages went out while b started and joined (the rest follows)
        assert publisher.sent > sent_when_b_started and not publisher.done
        publisher.release()
        await publishing
        await wait_until(lambda: processed_all(stack, len(reference["inbox"])), what="trial processed by a and b")
        await wait_until(lambda: all_mailed(stack), seconds=30, what="every notice mailed")
        reports = {"a": a.health(), "b": b.health()}
        assert b.terminate() == 0, b.tail()
        assert a.terminate() == 0, a.tail()
    finally:
        publisher.stop()
        if publishing is not None:
            await asyncio.gather(publishing, return_exceptions=True)
        a.stop_quietly()
        if b is not None:
            b.stop_quietly()
    for name, report in reports.items():  # both members did part of the work
        assert report is not None and report["processed"]["received"] > 0, name
    await assert_same_as_embedded(stack, reference, trial)


async def test_one_of_two_workers_stopping_under_traffic_loses_and_doubles_nothing(
    tansu_stack: Stack, trial: SyntheticTrial, trial_file: Path, tmp_path: Path
) -> None:
    stack = tansu_stack
    reference = await embedded_results(trial_file, tmp_path)
    publisher = SteadyPublisher(stack.kafka, trial.lines, PER_SECOND, HOLD_AT)
    a, b = stack.worker("a"), stack.worker("b")
    publishing: asyncio.Future[None] | None = None
    try:
        await a.ready()
        await b.ready()
        await wait_until(lambda: _true(_split(a, b)), seconds=60, what="partitions split between a and b")
        publishing = asyncio.ensure_future(asyncio.to_thread(publisher.run))
        await wait_until(lambda: _true(publisher.sent >= len(trial.lines) // 3), what="a third of the trial published")
        a_report = a.health()
        sent_at_sigterm = publisher.sent
        assert a.terminate() == 0, a.tail()  # SIGTERM under load: drains the batch in flight, commits, leaves
        await wait_until(
            lambda: _true(len(_partitions(b)) == PARTITIONS_HELD), seconds=60, what="b owns every partition"
        )
        # the leave and the takeover happened under traffic (the rest follows)
        assert publisher.sent > sent_at_sigterm and not publisher.done
        publisher.release()
        await publishing
        await wait_until(lambda: processed_all(stack, len(reference["inbox"])), what="trial processed by b")
        await wait_until(lambda: all_mailed(stack), seconds=30, what="every notice mailed")
        b_report = b.health()
        assert b.terminate() == 0, b.tail()
    finally:
        publisher.stop()
        if publishing is not None:
            await asyncio.gather(publishing, return_exceptions=True)
        a.stop_quietly()
        b.stop_quietly()
    assert a_report is not None and a_report["processed"]["received"] > 0
    assert b_report is not None and b_report["processed"]["received"] > 0
    await assert_same_as_embedded(stack, reference, trial)


async def assert_same_as_embedded(stack: Stack, reference: dict[str, Any], trial: SyntheticTrial) -> None:
    """Same incidence, hits, alerts, inbox and dead letters as the embedded run; no msg_id lost; no alert, change
    or email doubled."""
    kafka = await results(stack.store)
    for part in PARITY:
        assert kafka[part] == reference[part], part
    assert reference["alerts"] and reference["incidence"]
    # nothing lost: every valid message the site sent is in the inbox
    sent = {item.message.envelope.msg_id for line in trial.lines if isinstance(item := decode(line, "x"), Decoded)}
    assert sent <= {msg_id for msg_id, _ in kafka["inbox"]}
    # nothing doubled: each alert raised once, each escalation to a grade once, each email once
    async with stack.store.engine.connect() as connection:
        raised = list(
            await connection.execute(
                text("SELECT alert_key, count(*) FROM alert_change WHERE kind = 'raised' GROUP BY alert_key")
            )
        )
        escalated_twice = list(
            await connection.execute(
                text(
                    "SELECT alert_key, grade FROM alert_change WHERE kind = 'escalated' "
                    "GROUP BY alert_key, grade HAVING count(*) > 1"
                )
            )
        )
    assert sorted(key for key, _ in raised) == sorted(alert[0] for alert in kafka["alerts"])
    assert {count for _, count in raised} == {1}
    assert escalated_twice == []
    ids = [m["Message-ID"] for m in stack.smtp.inbox.messages]
    assert len(ids) == len(set(ids))
    assert set(ids) == {f"<{notice[0]}@example.org>" for notice in kafka["notices"]}


def _partitions(worker: WorkerProcess) -> dict[str, Any]:
    """The inbound partitions a worker holds (its health report's lag keys; the lag values are wrong on Tansu)."""
    report = worker.health()
    return dict(report["consumer"]["lag"]) if report else {}


def _split(a: WorkerProcess, b: WorkerProcess) -> bool:
    held_a, held_b = _partitions(a), _partitions(b)
    return bool(held_a) and bool(held_b) and len(held_a) + len(held_b) == PARTITIONS_HELD


async def _true(value: bool) -> bool:
    return value
