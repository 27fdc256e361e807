"""The outbox never gives up on an alert email (issue 10, item 5): retried through a long SMTP outage with a real
server (aiosmtpd), overdue shown loudly, a permanent 5xx marks the recipient it names and is surfaced."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.service.delivery import RetryPolicy
from safety_monitor.service.handling import handle_batch
from safety_monitor.service.records import Notice
from safety_monitor.service.review import review_queue
from safety_monitor.service.views import delivery_health
from safety_monitor.settings import Settings
from tests.cli_harness import invoke, use_embedded_defaults
from tests.conftest import ROOT, Database, _Inbox, free_port
from tests.factories import ae, inbound, subject_id

pytestmark = pytest.mark.smtp

GOOD, BAD, LATER = "dsmb@example.org", "nobody@example.org", "busy@example.org"


class _Recipients(_Inbox):
    """An SMTP inbox refusing one recipient for good (550) and another for now (450, `busy` times)."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == BAD:
            return "550 5.1.1 <nobody@example.org>: mailbox unavailable"
        if address == LATER and self.busy:
            self.busy -= 1
            return "450 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def app_for(port: int, database: Database, rules_dir: Path, clock: FixedClock, recipients: tuple[str, ...]) -> App:
    settings = Settings.from_env(
        {},
        database_url=database.url,
        rules_dir=rules_dir,
        templates_dir=ROOT / "templates",
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=5.0,
        mail_from="safety-monitor@example.org",
        alert_recipients=recipients,
    )
    return bootstrap(settings, store=database.store, clock=clock)


@pytest.fixture
def recipients_server() -> Iterator[tuple[int, _Recipients]]:
    inbox = _Recipients()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_the_retry_policy_never_gives_up_and_caps_its_backoff() -> None:
    policy = RetryPolicy()
    now = datetime(2026, 5, 3, tzinfo=UTC)
    delays = [policy.next_attempt(n, now) for n in range(1, 200)]
    assert all(d is not None for d in delays)
    assert max(d - now for d in delays if d is not None) == timedelta(minutes=30)


async def test_a_three_hour_smtp_outage_then_recovery_delivers_every_alert_email_once(
    database: Database, clock: FixedClock, rules_without_routing: Path
) -> None:
    port = free_port()  # nothing listens here for three hours (simulated): every connection is refused
    app = app_for(port, database, rules_without_routing, clock, (GOOD,))
    messages = [ae(subject_id(n), f"AE-{n}", "Haemoptysis", 3) for n in range(1, 13)]
    await handle_batch(app.store, inbound(*messages), app.pipeline, clock)
    start = clock.now()
    passes = 0
    while clock.now() < start + timedelta(hours=3):
        report = await app.deliver()
        assert report.sent == 0
        passes += 1
        clock.set(clock.now() + timedelta(minutes=1))
    async with app.store() as uow:
        counts = await uow.outbox.counts()
        pending = await uow.outbox.due(start + timedelta(days=1), 100)
    assert counts["sent"] == 0 and counts["pending"] == 12, counts  # nothing given up
    assert len(pending) == 12 and all(n.attempts >= 12 for n in pending)  # more attempts than the old limit
    health = await delivery_health(app.store, clock.now())
    assert health.status == "overdue-notices" and len(health.overdue) == 12
    queue = await review_queue(app.store, now=clock.now())
    assert len(queue.overdue_emails) == 12

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()  # the server is back
    try:
        for _ in range(31):  # within the 30-minute backoff cap, every email is due once more
            await app.deliver()
            clock.set(clock.now() + timedelta(minutes=1))
    finally:
        controller.stop()
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == 12 and len(set(ids)) == 12  # every alert email delivered, each once
    assert (await delivery_health(app.store, clock.now())).status == "ok"


async def test_a_permanent_5xx_marks_the_recipient_it_names_not_the_email(
    recipients_server: tuple[int, _Recipients], database: Database, clock: FixedClock, rules_without_routing: Path
) -> None:
    port, inbox = recipients_server
    app = app_for(port, database, rules_without_routing, clock, (GOOD, BAD))
    await handle_batch(app.store, inbound(ae(subject_id(7), "AE-1", "Haemoptysis", 3)), app.pipeline, clock)
    report = await app.deliver()
    assert report.sent == 1
    assert inbox.envelopes == [("safety-monitor@example.org", [GOOD])]
    clock.set(clock.now() + timedelta(hours=1))
    assert (await app.deliver()).sent == 0  # not sent again to anyone
    assert len(inbox.messages) == 1
    health = await delivery_health(app.store, clock.now())
    assert health.status == "undeliverable-recipients"
    ((_, refused),) = health.undeliverable
    assert list(refused) == [BAD] and refused[BAD].startswith("550")


async def test_an_email_every_recipient_refuses_for_good_is_not_retried_and_is_surfaced(
    recipients_server: tuple[int, _Recipients], database: Database, clock: FixedClock, rules_without_routing: Path
) -> None:
    port, _ = recipients_server
    app = app_for(port, database, rules_without_routing, clock, (BAD,))
    await handle_batch(app.store, inbound(ae(subject_id(7), "AE-1", "Haemoptysis", 3)), app.pipeline, clock)
    await app.deliver()
    async with app.store() as uow:
        assert await uow.outbox.due(clock.now() + timedelta(days=1), 10) == []
    health = await delivery_health(app.store, clock.now())
    assert health.status == "undeliverable-recipients" and len(health.undeliverable) == 1
    queue = await review_queue(app.store, now=clock.now())
    assert [n.notice_id for n, _ in queue.undeliverable_emails] == [health.undeliverable[0][0].notice_id]


async def test_a_4xx_for_one_recipient_is_retried_for_that_recipient_only(
    recipients_server: tuple[int, _Recipients], database: Database, clock: FixedClock, rules_without_routing: Path
) -> None:
    port, inbox = recipients_server
    inbox.busy = 1
    app = app_for(port, database, rules_without_routing, clock, (GOOD, LATER))
    await handle_batch(app.store, inbound(ae(subject_id(7), "AE-1", "Haemoptysis", 3)), app.pipeline, clock)
    await app.deliver()
    assert [rcpts for _, rcpts in inbox.envelopes] == [[GOOD]]
    clock.set(clock.now() + timedelta(minutes=1))
    await app.deliver()
    assert [rcpts for _, rcpts in inbox.envelopes] == [[GOOD], [LATER]]
    assert len({m["Message-ID"] for m in inbox.messages}) == 1  # the same email, to the one it had not reached
    clock.set(clock.now() + timedelta(hours=1))
    await app.deliver()
    assert len(inbox.messages) == 2
    assert (await delivery_health(app.store, clock.now())).status == "ok"


def test_health_command_exits_1_naming_an_overdue_alert_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules_without_routing: Path
) -> None:
    use_embedded_defaults(monkeypatch, tmp_path, rules_without_routing)

    async def an_email_unsent_for_an_hour() -> None:
        engine = create_engine(f"sqlite:///{tmp_path}/var/safety-monitor.db")
        await upgrade(engine)
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        async with SqlStore(engine)() as uow:
            await uow.outbox.add([Notice("n-1", "alert-key-1", "raised", (GOOD,), {}, an_hour_ago)])
            await uow.commit()
        await engine.dispose()

    asyncio.run(an_email_unsent_for_an_hour())
    result = invoke("health", code=1)
    assert "status: overdue-notices" in result.output and "OVERDUE: alert email n-1 for alert-key-1" in result.output
