"""Crashes on Apache Kafka under traffic: a worker SIGKILLed again and again, the broker itself SIGKILLed.

Each SIGKILL lands wherever the worker happens to be: between a batch's database commit and its offset commit (the
batch is redelivered and the inbox recognises it), in the middle of a batch (its transaction rolls back), while the
outbox is being sent (the killed worker's delivery lease runs out and another sends what is left). The proof is the
end state: incidence, inbox, dead letters and alerts (key, rule, grade) identical to the embedded runtime's for the
same messages, every alert raised once, every email on the SMTP server once by Message-ID, and the group's committed
offsets at the end offsets. (Rule hits and alert statuses are not compared on the 50,000-message load: they depend
on the order across topics, see tests/kafka/parity.py.)
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from safety_monitor.demo import SyntheticTrial, generate_load
from tests.conftest import SmtpServer
from tests.kafka.conftest import (
    Broker,
    Stack,
    all_mailed,
    embedded_results,
    make_stack,
    processed_all,
    wait_until,
)
from tests.kafka.parity import ORDER_FREE, assert_same_as_embedded
from tests.kafka.traffic import SteadyPublisher
from tests.kafka.workers import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.smtp]

KILLS = 20
MESSAGES = 50_000
PER_SECOND = 300  # ~160 s of traffic, about what 20 kill-and-restart rounds take; the last 5 % waits for round 20
PROGRESS = 200  # each incarnation commits at least this many messages to the database before it is killed


@dataclass(frozen=True)
class Kill:
    """The moment of one SIGKILL: messages the site had published, messages in the inbox (committed to the
    database), and the group's committed offsets (summed over the inbound partitions)."""

    published: int
    inbox: int
    offsets: int


async def test_a_worker_sigkilled_20_times_while_50000_messages_are_published_loses_and_doubles_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    lines = tuple(generate_load(MESSAGES))
    path = tmp_path / "load.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reference = await embedded_results(path, tmp_path)
    publisher = SteadyPublisher(stack.kafka, lines, PER_SECOND, hold_at=0.95)
    rng = random.Random(KILLS)  # reproducible kill moments
    killed_at: list[Kill] = []
    publishing = asyncio.ensure_future(asyncio.to_thread(publisher.run))
    workers: list[WorkerProcess] = []
    try:
        for round_ in range(1, KILLS + 1):
            worker = stack.worker(f"killed-{round_}")
            workers.append(worker)
            await worker.ready(seconds=180)  # joins while the previous, killed member is still in the group
            before = await stack.count("inbox")

            async def working(before: int = before) -> bool:
                inbox = await stack.count("inbox")
                return inbox >= before + PROGRESS or inbox >= publisher.sent  # or caught up with the site

            await wait_until(working, seconds=180, what=f"incarnation {round_} at work")
            await asyncio.sleep(rng.uniform(0, 1.5))
            worker.kill()
            # what the killed incarnation committed to the database beyond its last offset commit comes again
            committed = sum((await asyncio.to_thread(stack.committed_offsets)).values())
            killed_at.append(Kill(publisher.sent, await stack.count("inbox"), committed))
        # every kill came while the site was still publishing
        assert not publisher.done, killed_at
        publisher.release()
        last = stack.worker("last")
        workers.append(last)
        await last.ready(seconds=180)
        await publishing
        await wait_until(lambda: _at_least(stack, "inbox", MESSAGES), seconds=600, what="all messages processed")
        await wait_until(lambda: all_mailed(stack), seconds=600, what="every notice mailed")
        await wait_until(lambda: _true(_lag_zero(last)), seconds=120, what="lag 0 on every partition")
        report = last.health()
        assert last.terminate() == 0, last.tail()
    finally:
        publisher.stop()
        await asyncio.gather(publishing, return_exceptions=True)
        for worker in workers:
            worker.stop_quietly()
    assert len(killed_at) == KILLS
    # redelivery really happened: some kills left messages in the database that the group had not offset-committed
    assert any(kill.inbox > kill.offsets for kill in killed_at), killed_at
    assert report is not None and report["status"] == "ok"
    await assert_same_as_embedded(stack, reference, lines, ORDER_FREE, worker_kills=KILLS)


async def test_the_broker_sigkilled_under_a_working_worker_loses_and_doubles_nothing(
    own_broker: Broker, smtp_server: SmtpServer, trial: SyntheticTrial, trial_file: Path, tmp_path: Path
) -> None:
    """Kafka SIGKILLed (no controlled shutdown) with a worker consuming and offsets committed, then started again on
    the same log directory and port: the worker rides it out, nothing committed is lost, nothing is done twice."""
    async with make_stack(own_broker.address, smtp_server, tmp_path) as stack:
        reference = await embedded_results(trial_file, tmp_path)
        publisher = SteadyPublisher(stack.kafka, trial.lines, 60, hold_at=0.5)
        worker = stack.worker()
        publishing: asyncio.Future[None] | None = None
        try:
            await worker.ready()
            publishing = asyncio.ensure_future(asyncio.to_thread(publisher.run))
            await wait_until(lambda: _true(publisher.sent >= publisher.hold_at), seconds=120, what="half published")
            await wait_until(lambda: _true(bool(stack.committed_offsets())), seconds=60, what="offsets committed")
            committed = stack.committed_offsets()
            await asyncio.to_thread(own_broker.crash)
            # what the group had committed survived the crash (offsets only move forward)
            after = stack.committed_offsets()
            assert all(after[tp] >= offset for tp, offset in committed.items()), (committed, after)
            publisher.release()
            await publishing
            await wait_until(lambda: processed_all(stack, len(reference["inbox"])), seconds=180, what="processed")
            await wait_until(lambda: all_mailed(stack), seconds=60, what="every notice mailed")
            await wait_until(lambda: _true(_lag_zero(worker)), seconds=120, what="lag 0 on every partition")
            assert worker.terminate() == 0, worker.tail()  # the same worker, never restarted
        finally:
            publisher.stop()
            if publishing is not None:
                await asyncio.gather(publishing, return_exceptions=True)
            worker.stop_quietly()
        await assert_same_as_embedded(stack, reference, trial.lines)


def _lag_zero(worker: WorkerProcess) -> bool:
    report = worker.health()
    lag = dict(report["consumer"]["lag"]) if report else {}
    return len(lag) == 20 and set(lag.values()) == {0}


async def _at_least(stack: Stack, table: str, expected: int) -> bool:
    return await stack.count(table) >= expected


async def _true(value: bool) -> bool:
    return value
