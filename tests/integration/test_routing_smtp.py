"""One grouped email with several alerts through a real SMTP server (aiosmtpd); a retry keeps its Message-ID."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from safety_monitor.adapters.mail import SmtpMailer, SmtpSettings
from safety_monitor.domain.notifications import mail_id
from safety_monitor.service.delivery import deliver_due
from tests.conftest import Database, SmtpServer
from tests.integration.test_routing_delivery import RENDERER, T0, M, alert, change, load, plan

pytestmark = pytest.mark.smtp


async def test_a_group_of_three_alerts_arrives_as_one_escaped_email_with_a_stable_message_id(
    smtp_server: SmtpServer, database: Database
) -> None:
    routing = load()
    mailer = SmtpMailer(SmtpSettings(smtp_server.host, smtp_server.port, timeout=5.0))
    await plan(
        database.store,
        routing,
        change(alert("hemoptysis", spid="AE-1")),
        change(alert("hemoptysis", spid="AE-2", grade=3)),
        change(alert("hypertension-grade-3", spid="AE-3", grade=3)),
    )

    async def deliver(at: datetime) -> tuple[int, int]:
        report = await deliver_due(
            database.store,
            mailer,
            RENDERER,
            sender="sm@example.org",
            mail_domain="example.org",
            now=at,
            routing=routing,
        )
        return report.sent, report.failed

    smtp_server.inbox.fail_next = 1  # the first attempt is refused (451): retried with backoff
    assert await deliver(T0 + 2 * M) == (0, 1)
    assert await deliver(T0 + 2 * M + timedelta(seconds=5)) == (1, 0)  # backoff over
    assert await deliver(T0 + 10 * M) == (0, 0)

    (mail,) = smtp_server.inbox.messages
    assert smtp_server.inbox.envelopes == [("sm@example.org", ["mm1@example.org", "mm2@example.org"])]
    assert mail["Subject"] == "[CRITICAL] 3 safety alert notices (3 new) - X / S7"
    assert mail["Message-ID"].endswith("@example.org>")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for record in ("AE:AE-1", "AE:AE-2", "AE:AE-3"):
        assert record in text and record in html
    assert "<script>x</script>" in text  # plain text: shown as sent
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "hold &lt;anlotinib&gt;" in html
    async with database.store() as uow:
        carried = [n.notification_id for n in await uow.notifications.list()]
        assert await uow.outbox.due(T0 + 1000 * M, 10) == []
    # The Message-ID is the set of notifications the email carries: the refused attempt had the same one.
    assert mail["Message-ID"] == f"<{mail_id(carried)}@example.org>"
