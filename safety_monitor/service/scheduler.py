"""Owns scheduled work (outbox delivery now; digests, deadline reminders later): once per slot across workers.

A job runs on a fixed interval. Its schedule is cut into slots (`epoch seconds // interval`); before running a
slot, a worker claims it through the lease repository in its own committed transaction, so with N workers (Kafka)
or one process (embedded) each slot runs exactly once. A holder that dies mid-run leaves its lease to expire; the
slot is then claimed again and run again, so every job must be idempotent (the outbox is: stable Message-IDs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from safety_monitor.service.delivery import deliver_due
from safety_monitor.service.ports import Clock, LeaseState, Mailer, Renderer, UnitOfWorkFactory

log = logging.getLogger(__name__)

JobBody = Callable[[datetime], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A named piece of periodic work. `run(now)` is called at most once per slot of `every`, cluster-wide."""

    name: str
    every: timedelta
    run: JobBody
    lease: timedelta = timedelta(minutes=5)  # how long a claim holds before another worker may take over

    def slot(self, now: datetime) -> int:
        return int(now.timestamp() // self.every.total_seconds())


@dataclass
class JobRun:
    job: str
    slot: int
    result: object = None
    error: str | None = None


@dataclass
class Scheduler:
    """Runs due jobs. `tick()` does one pass (tests, one-shot commands); `run(stop)` loops until `stop` is set."""

    store: UnitOfWorkFactory
    clock: Clock
    jobs: Sequence[ScheduledJob]
    holder: str
    poll: timedelta = timedelta(seconds=1)
    runs: list[JobRun] = field(default_factory=list)  # what this scheduler ran (bounded), for health and tests

    async def tick(self) -> list[JobRun]:
        done = []
        for job in self.jobs:
            run = await self._run_if_due(job)
            if run is not None:
                done.append(run)
        self.runs = (self.runs + done)[-100:]
        return done

    async def _run_if_due(self, job: ScheduledJob) -> JobRun | None:
        now = self.clock.now()
        slot = job.slot(now)
        async with self.store() as uow:
            claimed = await uow.leases.claim(job.name, slot, self.holder, now, now + job.lease)
            if not claimed:
                return None
            await uow.commit()
        run = JobRun(job.name, slot)
        try:
            run.result = await job.run(now)
        except Exception as exc:  # the lease stays open and expires: another pass takes the slot over
            run.error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduled job failed job=%s slot=%d holder=%s", job.name, slot, self.holder)
            return run
        async with self.store() as uow:
            await uow.leases.complete(job.name, slot, self.holder, self.clock.now())
            await uow.commit()
        return run

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `poll` until `stop` is set; a failing pass is logged and the loop goes on."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # the database may be away for a while: keep trying, never die silently
                log.exception("scheduler pass failed holder=%s", self.holder)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll.total_seconds())

    async def run_until_cancelled(self, drain: timedelta = timedelta(seconds=10)) -> None:
        """`run` for a host that stops its tasks by cancelling them (Faust's `app.task` on SIGTERM).

        A cancellation lets the pass in flight finish, for up to `drain`, before it goes on: cancelled between
        the SMTP server's acceptance of an email and the commit that marks it sent, the pass would leave that
        email to the next worker, which sends it a second time once the lease runs out."""
        stop = asyncio.Event()
        loop = asyncio.create_task(self.run(stop))
        try:
            await asyncio.shield(loop)
        except asyncio.CancelledError:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(loop), timeout=drain.total_seconds())
            except TimeoutError:
                log.error("scheduler pass still running after %s at stop holder=%s", drain, self.holder)
                loop.cancel()
            raise

    async def states(self) -> list[LeaseState]:
        async with self.store() as uow:
            return await uow.leases.states()


async def release_dead_holders(store: UnitOfWorkFactory, now: datetime, is_dead: Callable[[str], bool]) -> list[str]:
    """End at once the unfinished leases of holders known dead (`is_dead(holder)`), instead of waiting them
    out: a killed `serve` would otherwise hold back delivery until its lease ran out. Returns the holders."""
    async with store() as uow:
        dead = [s for s in await uow.leases.states() if s.done_at is None and s.held_until >= now and is_dead(s.holder)]
        for state in dead:
            await uow.leases.release(state.job, state.holder, now)
        await uow.commit()
    return sorted({s.holder for s in dead})


def outbox_delivery_job(
    store: UnitOfWorkFactory,
    mailer: Mailer,
    renderer: Renderer,
    *,
    sender: str,
    mail_domain: str,
    every: timedelta = timedelta(seconds=2),
) -> ScheduledJob:
    """Send due outbox notices (first attempts and retries with backoff) once per slot across all workers."""

    async def run(now: datetime) -> object:
        total_sent = total_failed = 0
        while True:  # deliver_due takes at most `limit` notices per call
            report = await deliver_due(store, mailer, renderer, sender=sender, mail_domain=mail_domain, now=now)
            total_sent += report.sent
            total_failed += report.failed
            if report.sent == 0:
                return {"sent": total_sent, "failed": total_failed}

    # A worker that dies mid-pass blocks delivery until its lease runs out: short, but longer than a normal pass.
    return ScheduledJob("outbox-delivery", every, run, lease=max(every * 5, timedelta(seconds=15)))


@dataclass
class Running:
    """A scheduler loop running beside other work (`async with running(scheduler): ...`)."""

    scheduler: Scheduler
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Scheduler:
        self.task = asyncio.create_task(self.scheduler.run(self.stop))
        return self.scheduler

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task


def running(scheduler: Scheduler) -> Running:
    return Running(scheduler)
