"""Owns the scheduled jobs routing needs: delivery that honours silences, reminders for open alerts, digests.

Both runtimes run them through the one DB-leased scheduler (service/scheduler.py), so each slot runs once
across workers; every job is idempotent, so a slot taken over from a dead worker runs again harmlessly.

The routing may be given as a function returning the routing in force: each run then reads it afresh, so a hot
reload (service/reload.py) changes receivers, silences and digest schedules without a restart. The job list itself
does not depend on the routing (the digest job runs whether or not the routing has schedules), so a reload that
adds or removes digest schedules needs no new jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from safety_monitor.domain.routing import Routing
from safety_monitor.service.delivery import deliver_due
from safety_monitor.service.digest_schedule import DIGEST_CHECK_EVERY, ReportSource, send_scheduled_digests
from safety_monitor.service.notifications import plan_repeats
from safety_monitor.service.ports import Mailer, Renderer, UnitOfWorkFactory
from safety_monitor.service.scheduler import ScheduledJob

REPEAT_CHECK_EVERY = timedelta(minutes=1)

RoutingSource = Routing | Callable[[], Routing]  # a fixed routing, or a function returning the one in force


def current_routing(routing: RoutingSource) -> Routing:
    return routing if isinstance(routing, Routing) else routing()


def routed_delivery_job(
    store: UnitOfWorkFactory,
    mailer: Mailer,
    renderer: Renderer,
    routing: RoutingSource,
    *,
    sender: str,
    mail_domain: str,
    every: timedelta = timedelta(seconds=2),
) -> ScheduledJob:
    """Email due groups (holding what silences and inhibit rules hold), then send the outbox. Same job name
    and lease as `scheduler.outbox_delivery_job`, which it replaces where a routing file is in force."""

    async def run(now: datetime) -> object:
        total_sent = total_failed = 0
        in_force = current_routing(routing)  # one routing for the whole pass
        while True:  # deliver_due sends at most `limit` emails per call
            report = await deliver_due(
                store, mailer, renderer, sender=sender, mail_domain=mail_domain, now=now, routing=in_force
            )
            total_sent += report.sent
            total_failed += report.failed
            if report.sent == 0:
                return {"sent": total_sent, "failed": total_failed}

    return ScheduledJob("outbox-delivery", every, run, lease=max(every * 5, timedelta(seconds=15)))


def repeat_job(store: UnitOfWorkFactory, every: timedelta = REPEAT_CHECK_EVERY) -> ScheduledJob:
    """Reminders for alerts still open `repeat_interval` after a receiver last heard of them."""

    async def run(now: datetime) -> object:
        return await plan_repeats(store, now)

    return ScheduledJob("notification-repeats", every, run)


def digest_job(
    store: UnitOfWorkFactory,
    routing: RoutingSource,
    every: timedelta = DIGEST_CHECK_EVERY,
    report: ReportSource | None = None,
) -> ScheduledJob:
    """Digests of the routing file's schedules, each cron slot once (sent by the delivery job)."""

    async def run(now: datetime) -> object:
        return await send_scheduled_digests(store, current_routing(routing), now, report=report)

    return ScheduledJob("digest-schedules", every, run)


def routing_jobs(
    store: UnitOfWorkFactory,
    mailer: Mailer,
    renderer: Renderer,
    routing: RoutingSource,
    *,
    sender: str,
    mail_domain: str,
    delivery_every: timedelta = timedelta(seconds=2),
    report: ReportSource | None = None,
) -> list[ScheduledJob]:
    """Every scheduled job of the notification path, for a runtime's scheduler (reminders and digests first, so
    what they write is sent in the same pass)."""
    return [
        repeat_job(store),
        digest_job(store, routing, report=report),
        routed_delivery_job(
            store, mailer, renderer, routing, sender=sender, mail_domain=mail_domain, every=delivery_every
        ),
    ]
