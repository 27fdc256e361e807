"""Owns scheduled digests: at each cron slot of a routing file's digest schedule, one digest email in the outbox.

Run through the scheduler (both runtimes) every minute. A slot is the latest firing time at or before now; a
schedule whose last recorded run is older than that slot writes its digest: the outbox email (id from the
schedule name and slot, so a re-run writes the same row) and the run record commit together, so a crash never
leaves a digest half-sent or sent twice. A process down at 08:00 sends the day's digest when it comes back
within `CATCH_UP` (once: only the latest slot counts, missed older slots are not replayed); a slot older
than that is skipped, so a fresh deployment does not open with yesterday's digest.

The schedules are those of the routing in force at each run, so a hot reload (service/reload.py) takes effect at
the next check (within a minute) without a restart. A schedule a reload adds is treated like one at start: its
latest slot is sent once if it lies within `CATCH_UP` and that schedule name has no run at or after it (so adding
"0 8 * * *" at 10:00 sends today's 08:00 digest at once; moving a schedule that already ran today to a later
hour already past sends that slot too). A schedule a reload removes writes nothing more; its run records stay.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from safety_monitor.domain.routing import DigestSchedule, Routing
from safety_monitor.service.delivery import DIGEST_MAIL
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.records import Notice
from safety_monitor.service.views import digest_context

log = logging.getLogger(__name__)

DIGEST_CHECK_EVERY = timedelta(minutes=1)
CATCH_UP = timedelta(hours=6)
# A schedule rendered with this template mails the DSMB safety report (service/report.py), its data cut the slot's
# local date; its figures are stored with the outbox row, so a retried send shows the same report.
DSMB_REPORT_TEMPLATE = "dsmb_report"
ReportSource = Callable[[date, date | None], Awaitable[dict[str, Any]]]  # (data cut, new since) -> figures


def digest_mail_id(schedule: DigestSchedule, slot: datetime) -> str:
    return hashlib.sha256(f"digest|{schedule.name}|{slot.isoformat()}".encode()).hexdigest()[:32]


def _run_key(schedule: DigestSchedule) -> str:
    # Runs are recorded per schedule (two schedules of one kind keep separate histories), and "alerts since
    # the last digest" counts from this schedule's previous run.
    return f"schedule:{schedule.name}"


async def send_scheduled_digests(
    store: UnitOfWorkFactory,
    routing: Routing,
    now: datetime,
    catch_up: timedelta = CATCH_UP,
    *,
    report: ReportSource | None = None,
) -> list[str]:
    """Write the digest of every schedule whose current slot has not run yet; returns their names. `report` builds
    the DSMB report of a data cut, for schedules using the `dsmb_report` template (required by them)."""
    written: list[str] = []
    for schedule in routing.digests:
        slot = schedule.schedule.latest_at_or_before(now)
        if slot is None or now - slot > catch_up:
            continue
        key = _run_key(schedule)
        async with store() as uow:
            last = await uow.digests.last_sent(key)
        if last is not None and last >= slot:
            continue
        context = await digest_context(store, kind=key, now=now)
        recipients = tuple(dict.fromkeys(a for r in schedule.receivers for a in routing.receivers[r].emails))
        context |= {
            "kind": schedule.kind,
            "schedule": schedule.name,
            "slot": slot.isoformat(),
            "template": schedule.template,
        }
        if schedule.template == DSMB_REPORT_TEMPLATE:
            if report is None:
                raise RuntimeError(
                    f"digest schedule {schedule.name!r} mails the DSMB report but no report source is set"
                )
            zone = ZoneInfo(schedule.schedule.time_zone)
            # "New since the last report": since this schedule's previous run (its default when there was none).
            since = last.astimezone(zone).date() if last is not None else None
            context["report"] = await report(slot.astimezone(zone).date(), since)
        async with store() as uow:
            last = await uow.digests.last_sent(key)
            if last is not None and last >= slot:
                continue  # another run wrote it meanwhile
            mail_id = digest_mail_id(schedule, slot)
            await uow.outbox.add([Notice(mail_id, key, DIGEST_MAIL, recipients, context, now)])
            await uow.digests.record_sent(key, slot, recipients)
            await uow.commit()
        log.info("digest written schedule=%s slot=%s recipients=%d", schedule.name, slot.isoformat(), len(recipients))
        written.append(schedule.name)
    return written
