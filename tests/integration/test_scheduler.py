"""The scheduler runs each slot of a job exactly once across workers (DB lease), on memory, SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.scheduler import ScheduledJob, Scheduler, running
from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_schema

T0 = datetime(2026, 5, 3, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UnitOfWorkFactory]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url, schema = (
        (POSTGRES_URL, await _postgres_schema())
        if request.param == "postgresql"
        else (f"sqlite:///{tmp_path}/s.db", None)
    )
    engine = create_engine(url, schema=schema)
    await upgrade(engine)
    try:
        yield SqlStore(engine)
    finally:
        await engine.dispose()
        if schema:
            await _drop_schema(schema)


def counting_job(
    calls: list[tuple[str, datetime]], holder: str, every: timedelta = timedelta(minutes=1)
) -> ScheduledJob:
    async def run(now: datetime) -> object:
        calls.append((holder, now))
        await asyncio.sleep(0.01)  # give the other worker a chance to race
        return None

    return ScheduledJob("outbox-delivery", every, run, lease=timedelta(minutes=5))


async def test_n_workers_run_each_slot_once(store: UnitOfWorkFactory) -> None:
    clock = FixedClock(T0)
    calls: list[tuple[str, datetime]] = []
    workers = [Scheduler(store, clock, [counting_job(calls, f"w{i}")], holder=f"w{i}") for i in range(3)]
    for minute in range(4):
        clock.set(T0 + timedelta(minutes=minute, seconds=5))
        for _ in range(2):  # several passes inside the same slot
            await asyncio.gather(*(w.tick() for w in workers))
    assert [at for _, at in calls] == [T0 + timedelta(minutes=m, seconds=5) for m in range(4)]


async def test_a_dead_holder_is_taken_over_after_its_lease(store: UnitOfWorkFactory) -> None:
    clock = FixedClock(T0)
    calls: list[tuple[str, datetime]] = []

    async def dies(now: datetime) -> object:
        raise RuntimeError("worker lost its database connection")

    first = Scheduler(store, clock, [ScheduledJob("outbox-delivery", timedelta(hours=1), dies)], holder="w1")
    second = Scheduler(store, clock, [counting_job(calls, "w2", timedelta(hours=1))], holder="w2")
    [failed] = await first.tick()
    assert failed.error == "RuntimeError: worker lost its database connection"
    assert await second.tick() == []  # still held by w1
    clock.set(T0 + timedelta(minutes=6))  # lease (5 min) expired, same hourly slot
    assert [run.job for run in await second.tick()] == ["outbox-delivery"]
    assert calls == [("w2", T0 + timedelta(minutes=6))]
    [state] = await second.states()
    assert (state.holder, state.done_at) == ("w2", T0 + timedelta(minutes=6))


async def test_a_run_still_held_blocks_the_next_slot(store: UnitOfWorkFactory) -> None:
    async with store() as uow:
        assert await uow.leases.claim("outbox-delivery", 1, "w1", T0, T0 + timedelta(minutes=5))
        await uow.commit()
    async with store() as uow:
        assert not await uow.leases.claim("outbox-delivery", 2, "w2", T0 + timedelta(minutes=1), T0)
    async with store() as uow:
        assert await uow.leases.claim("outbox-delivery", 2, "w2", T0 + timedelta(minutes=6), T0)


async def test_the_loop_runs_beside_other_work() -> None:
    store = MemoryStore()
    calls: list[tuple[str, datetime]] = []

    class Ticking:
        def now(self) -> datetime:
            return datetime.now(UTC)

    scheduler = Scheduler(
        store,
        Ticking(),
        [counting_job(calls, "w1", timedelta(seconds=0.05))],
        holder="w1",
        poll=timedelta(seconds=0.02),
    )
    async with running(scheduler):
        await asyncio.sleep(0.3)
    assert len(calls) >= 2


async def test_a_cancelled_scheduler_lets_the_pass_in_flight_finish_and_complete_its_lease(
    store: UnitOfWorkFactory,
) -> None:
    started, finished = asyncio.Event(), []

    async def run(now: datetime) -> object:
        started.set()
        await asyncio.sleep(0.2)  # an email accepted by the server, its mark-sent still to commit
        finished.append(now)
        return None

    job = ScheduledJob("outbox-delivery", timedelta(minutes=1), run, lease=timedelta(minutes=5))
    scheduler = Scheduler(store, FixedClock(T0), [job], holder="w1")
    task = asyncio.create_task(scheduler.run_until_cancelled())
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()  # as Faust stops its tasks on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == [T0]
    (lease,) = await scheduler.states()
    assert lease.done_at is not None  # the slot is done: no other worker runs it again


async def test_a_pass_that_outlives_the_drain_is_cancelled_and_its_lease_left_to_expire(
    store: UnitOfWorkFactory,
) -> None:
    started = asyncio.Event()

    async def run(now: datetime) -> object:
        started.set()
        await asyncio.sleep(60)
        return None

    job = ScheduledJob("outbox-delivery", timedelta(minutes=1), run, lease=timedelta(minutes=5))
    scheduler = Scheduler(store, FixedClock(T0), [job], holder="w1")
    task = asyncio.create_task(scheduler.run_until_cancelled(drain=timedelta(seconds=0.1)))
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    (lease,) = await scheduler.states()
    assert lease.done_at is None  # another worker takes the slot over once the lease runs out
