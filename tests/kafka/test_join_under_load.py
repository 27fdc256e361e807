"""Workers joining and leaving a busy consumer group: nothing lost, nothing doubled, the embedded runtime's results.

A rebalance hands a partition over with whatever was already committed to the database but not yet offset-committed;
the new owner receives it again and the inbox (one row per msg_id, checked in the batch's own transaction)
recognises it, so redelivery is harmless. The proof is that the database ends up identical to the embedded runtime's
for the same file, and that the group's committed offsets end at the partitions' end offsets (lag 0).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.demo import SyntheticTrial
from tests.kafka.conftest import (
    Stack,
    all_mailed,
    embedded_results,
    processed_all,
    wait_until,
)
from tests.kafka.parity import assert_same_as_embedded
from tests.kafka.traffic import SteadyPublisher
from tests.kafka.workers import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.smtp]

PARTITIONS_HELD = 20  # 5 inbound topics x KAFKA_PARTITIONS=4, split between the members of the group
PER_SECOND = 30  # steady traffic: the 923-line trial takes ~30 s, several times what a worker needs to start and join
HOLD_AT = 0.85  # the last 15 % waits until the membership change is complete, so traffic also follows it


async def test_a_second_worker_joining_under_traffic_loses_and_doubles_nothing(
    stack: Stack, trial: SyntheticTrial, trial_file: Path, tmp_path: Path
) -> None:
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
        await wait_until(lambda: _true(_lag_zero(a, b)), seconds=60, what="lag 0 on every partition")
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
    await assert_same_as_embedded(stack, reference, trial.lines)


async def test_one_of_two_workers_stopping_under_traffic_loses_and_doubles_nothing(
    stack: Stack, trial: SyntheticTrial, trial_file: Path, tmp_path: Path
) -> None:
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
        await wait_until(lambda: _true(_lag_zero(b)), seconds=60, what="lag 0 on every partition")
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
    await assert_same_as_embedded(stack, reference, trial.lines)


def _partitions(worker: WorkerProcess) -> dict[str, Any]:
    """The inbound partitions a worker holds and its lag on each (its health report)."""
    report = worker.health()
    return dict(report["consumer"]["lag"]) if report else {}


def _lag_zero(*workers: WorkerProcess) -> bool:
    """Together the workers hold every inbound partition, each with lag 0 (committed = high watermark)."""
    lags = [_partitions(worker) for worker in workers]
    held = {name: lag for lag in lags for name, lag in lag.items()}
    return sum(len(lag) for lag in lags) == PARTITIONS_HELD == len(held) and set(held.values()) == {0}


def _split(a: WorkerProcess, b: WorkerProcess) -> bool:
    held_a, held_b = _partitions(a), _partitions(b)
    return bool(held_a) and bool(held_b) and len(held_a) + len(held_b) == PARTITIONS_HELD


async def _true(value: bool) -> bool:
    return value
