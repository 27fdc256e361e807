"""Alert mail from the outbox through a real SMTP server (aiosmtpd), read back and checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.bootstrap import bootstrap
from safety_monitor.service.handling import handle_batch
from safety_monitor.settings import Settings
from tests.conftest import RECIPIENTS, ROOT, Database, SmtpServer
from tests.factories import ae, inbound, subject_id

pytestmark = pytest.mark.smtp

PAYLOAD = "<script>alert('x')</script> bleeding gums"


def settings_for(server: SmtpServer, database: Database, rules_dir: Path) -> Settings:
    """Mail delivery itself: rules without routing.yaml, so every alert goes to ALERT_RECIPIENTS at once."""
    return Settings.from_env(
        {},
        database_url=database.url,
        rules_dir=rules_dir,
        templates_dir=ROOT / "templates",
        mail_backend="smtp",
        smtp_host=server.host,
        smtp_port=server.port,
        smtp_timeout=5.0,
        mail_from="safety-monitor@example.org",
        alert_recipients=RECIPIENTS,
    )


async def test_alert_mail_arrives_multipart_escaped_with_a_stable_message_id(
    smtp_server: SmtpServer, database: Database, clock: FixedClock, rules_without_routing: Path
) -> None:
    app = bootstrap(settings_for(smtp_server, database, rules_without_routing), store=database.store, clock=clock)
    message = ae(subject_id(7), "AE-1", "Haemoptysis", 3, AETERM=PAYLOAD)
    await handle_batch(app.store, inbound(message), app.pipeline, clock)

    report = await app.deliver()
    assert (report.sent, report.failed) == (1, 0)
    (mail,) = smtp_server.inbox.messages
    assert smtp_server.inbox.envelopes == [("safety-monitor@example.org", list(RECIPIENTS))]
    assert mail["Subject"] == (
        "[CRITICAL] Hemoptysis / bronchopulmonary haemorrhage (any grade) - ALTER-ICI-01-012-0007 (Haemoptysis grade 3)"
    )
    assert mail["Message-ID"].endswith("@example.org>")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert PAYLOAD in text  # the text part is plain text: shown as typed, never interpreted
    assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; bleeding gums" in html
    assert "Grade 2: hold anlotinib" in text

    # Delivered once: a second run sends nothing, a redelivered batch writes no second notice.
    await handle_batch(app.store, inbound(message), app.pipeline, clock)
    assert (await app.deliver()).sent == 0
    assert len(smtp_server.inbox.messages) == 1


async def test_a_refused_send_is_retried_with_backoff_and_keeps_its_message_id(
    smtp_server: SmtpServer, database: Database, clock: FixedClock, rules_without_routing: Path
) -> None:
    app = bootstrap(settings_for(smtp_server, database, rules_without_routing), store=database.store, clock=clock)
    await handle_batch(app.store, inbound(ae(subject_id(8), "AE-1", "Haemoptysis", 2)), app.pipeline, clock)
    smtp_server.inbox.fail_next = 1

    first = await app.deliver()
    assert (first.sent, first.failed) == (0, 1)
    async with app.store() as uow:
        assert await uow.outbox.counts() == {"sent": 0, "pending": 1, "failed": 0}
        assert await uow.outbox.due(clock.now(), 10) == []  # backing off: not due yet

    clock.set(clock.now() + timedelta(seconds=5))
    second = await app.deliver()
    assert (second.sent, second.failed) == (1, 0)
    assert len(smtp_server.inbox.messages) == 1
    async with app.store() as uow:
        assert await uow.outbox.counts() == {"sent": 1, "pending": 0, "failed": 0}


async def test_an_unreachable_server_keeps_the_notice_pending(
    database: Database, clock: FixedClock, rules_without_routing: Path
) -> None:
    from tests.conftest import free_port

    dead = SmtpServer("127.0.0.1", free_port(), None)  # type: ignore[arg-type]
    settings = replace(settings_for(dead, database, rules_without_routing), smtp_timeout=2.0)
    app = bootstrap(settings, store=database.store, clock=clock)
    await handle_batch(app.store, inbound(ae(subject_id(9), "AE-1", "Haemoptysis", 2)), app.pipeline, clock)
    report = await app.deliver()
    assert (report.sent, report.failed) == (0, 1)
    async with app.store() as uow:
        (notice,) = await uow.outbox.due(clock.now() + timedelta(minutes=1), 10)
    assert notice.attempts == 1
    assert notice.last_error is not None and notice.last_error.startswith("SMTPConnect")
