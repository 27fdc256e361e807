"""A delivery pass on memory, SQLite and PostgreSQL decides from per-group summaries and reads the notifications of
a page of due groups at a time: every due group emailed once, nothing doubled, waiting groups left waiting."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from safety_monitor.domain.alerts import ChangeKind
from safety_monitor.service import notifications as notifications_service
from safety_monitor.service.notifications import flush_due, plan_repeats
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.records import Notification
from tests.integration.test_routing_delivery import T0, H, ListMailer, M, alert, change, deliver, load, plan

SUBJECTS = 11  # two notifications each; a page of 4 notifications: five pages of two groups and one of one


class CountingStore:
    """The store, recording how many groups each read of pending notifications asked for."""

    def __init__(self, store: UnitOfWorkFactory) -> None:
        self.store = store
        self.asked: list[int | None] = []

    def __call__(self) -> Any:
        uow = self.store()
        read = uow.notifications.pending

        async def pending(group_ids: Iterable[str] | None = None) -> list[Notification]:
            wanted = None if group_ids is None else set(group_ids)
            self.asked.append(None if wanted is None else len(wanted))
            return await read(wanted)

        uow.notifications.pending = pending
        return uow


async def test_a_pass_reads_a_page_of_groups_at_a_time_and_emails_each_once(
    store: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications_service, "FLUSH_PAGE", 4)
    routing, mailer = load(), ListMailer()
    for n in range(SUBJECTS):  # one medical-monitor group per subject, two alerts each
        subject = f"S{n:02d}"
        await plan(store, routing, change(alert("hemoptysis", subject=subject)))
        await plan(store, routing, change(alert("hemoptysis", subject=subject, spid="AE-2")))
    counting = CountingStore(store)
    report = await flush_due(counting, routing, T0 + 2 * M)
    assert report.emails == SUBJECTS and report.notifications == 2 * SUBJECTS and report.waiting == 0
    assert counting.asked == [2, 2, 2, 2, 2, 1]  # never the whole backlog
    assert len(set(report.mail_ids)) == SUBJECTS
    async with store() as uow:
        assert await uow.notifications.pending() == []
        assert await uow.notifications.pending_groups() == []
    sent = await deliver(store, mailer, routing, T0 + 2 * M)  # nothing left to flush; the outbox goes out
    assert sent.sent == SUBJECTS and sent.flushed is not None and sent.flushed.emails == 0
    assert sorted(m.text.count("New safety alert") for m in mailer.sent) == [2] * SUBJECTS
    assert len({m.message_id for m in mailer.sent}) == SUBJECTS


async def test_the_summary_sums_each_group_and_waiting_groups_stay_unread(store: UnitOfWorkFactory) -> None:
    routing = load()
    await plan(store, routing, change(alert("hemoptysis", subject="S1")))
    await plan(store, routing, change(alert("hemoptysis", subject="S1", spid="AE-2")), at=T0 + M)
    await plan(store, routing, change(alert("hemoptysis", subject="S2")), at=T0 + M)
    async with store() as uow:
        summaries = {s.group_id: s for s in await uow.notifications.pending_groups()}
        pending = await uow.notifications.pending()
    by_group: dict[str, list[Notification]] = {}
    for n in pending:
        by_group.setdefault(n.group_id, []).append(n)
    assert set(summaries) == set(by_group)
    for group_id, items in by_group.items():
        assert summaries[group_id].count == len(items)
        assert summaries[group_id].earliest_pending == min(n.created_at for n in items)
        assert summaries[group_id].urgent is False
    counting = CountingStore(store)
    report = await flush_due(counting, routing, T0 + 2 * M)  # S1's group is due (2m after T0); S2's is not
    assert report.emails == 1 and report.notifications == 2 and report.waiting == 1
    assert report.next_due_at == T0 + 3 * M
    assert counting.asked == [1]  # the waiting group's notifications were not read


async def test_an_urgent_notification_makes_its_group_due_in_the_summary(store: UnitOfWorkFactory) -> None:
    routing = load()
    first = alert("hemoptysis", subject="S1", grade=2)
    await plan(store, routing, change(first))
    assert (await flush_due(store, routing, T0 + 2 * M)).emails == 1
    worse = replace(first, grade=3)
    await plan(store, routing, change(worse, ChangeKind.ESCALATED, T0 + 3 * M, "m2"), at=T0 + 3 * M)
    async with store() as uow:
        (summary,) = await uow.notifications.pending_groups()
    assert summary.urgent is True and summary.count == 1
    assert (await flush_due(store, routing, T0 + 3 * M)).emails == 1  # inside group_interval, yet due


async def test_a_group_larger_than_a_page_is_read_alone_and_emailed_whole(
    store: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications_service, "FLUSH_PAGE", 2)
    routing = load()
    await plan(store, routing, *(change(alert("hemoptysis", subject="S1", spid=f"AE-{n}")) for n in range(5)))
    await plan(store, routing, change(alert("hemoptysis", subject="S2")))
    counting = CountingStore(store)
    report = await flush_due(counting, routing, T0 + 2 * M)
    assert counting.asked == [1, 1] and report.emails == 2 and report.notifications == 6


async def test_inhibition_sources_read_a_page_at_a_time_still_hold_their_targets(
    store: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications_service, "OPEN_ALERT_PAGE", 2)
    routing, mailer = load(), ListMailer()
    others = [change(alert("hemoptysis", subject=f"S{n}")) for n in range(5)]  # open alerts on earlier pages
    await plan(store, routing, *others)
    await deliver(store, mailer, routing, T0 + 2 * M)
    await plan(
        store,
        routing,
        change(alert("any-grade-5", subject="S9", grade=5), at=T0 + 3 * M),
        change(alert("hypertension-grade-3", subject="S9", grade=3), at=T0 + 3 * M),
        at=T0 + 3 * M,
    )
    async with store() as uow:
        assert len(await uow.notifications.open_alerts()) > 2 * notifications_service.OPEN_ALERT_PAGE
    await deliver(store, mailer, routing, T0 + 5 * M)
    assert all("Hypertension" not in m.text for m in mailer.sent)
    async with store() as uow:
        (held,) = await uow.notifications.pending()
    assert held.held_by is not None and held.held_by.startswith("inhibited by death-holds-lesser-alerts")


async def test_reminders_walk_the_open_alerts_a_page_at_a_time_once_each(
    store: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications_service, "OPEN_ALERT_PAGE", 2)
    routing, mailer = load(), ListMailer()
    await plan(store, routing, *(change(alert("hemoptysis", subject=f"S{n}")) for n in range(5)))
    await deliver(store, mailer, routing, T0 + 2 * M)
    async with store() as uow:
        assert len(await uow.notifications.open_alerts()) == 5  # three pages of two
    assert await plan_repeats(store, T0 + 2 * M + 24 * H) == 5
    assert await plan_repeats(store, T0 + 2 * M + 24 * H + M) == 0  # a re-run writes nothing new
