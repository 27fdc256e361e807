"""Owns sending the outbox after commit: render, send, record as sent; retry failures with backoff."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from safety_monitor.service.ports import Mailer, OutgoingMail, Renderer, UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between attempts; after `max_attempts` a notice stays failed and shows in health."""

    first_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(minutes=30)
    max_attempts: int = 12

    def next_attempt(self, attempts_made: int, now: datetime) -> datetime | None:
        if attempts_made >= self.max_attempts:
            return None
        delay: timedelta = min(self.first_delay * (2 ** (attempts_made - 1)), self.max_delay)
        return now + delay


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int
    failed: int


def message_id(notice_id: str, mail_domain: str) -> str:
    return f"<{notice_id}@{mail_domain}>"


async def deliver_due(
    uow_factory: UnitOfWorkFactory,
    mailer: Mailer,
    renderer: Renderer,
    *,
    sender: str,
    mail_domain: str,
    now: datetime,
    retry: RetryPolicy = RetryPolicy(),
    limit: int = 200,
) -> DeliveryReport:
    """Send every notice that is due. Each is marked sent in its own transaction right after the SMTP server
    accepted it; a crash in between re-sends it with the same Message-ID, which mail clients fold together."""
    async with uow_factory() as uow:
        due = await uow.outbox.due(now, limit)
    sent = failed = 0
    for notice in due:
        subject, text, html = renderer.alert_mail(notice.context)
        mail = OutgoingMail(message_id(notice.notice_id, mail_domain), sender, notice.recipients, subject, text, html)
        try:
            await mailer.send(mail)
        except Exception as exc:  # any transport failure: keep the row, retry later, never drop it
            failed += 1
            next_at = retry.next_attempt(notice.attempts + 1, now)
            log.warning(
                "notify failed notice=%s alert=%s attempt=%d next=%s error=%s",
                notice.notice_id,
                notice.alert_key,
                notice.attempts + 1,
                next_at,
                exc,
            )
            async with uow_factory() as uow:
                await uow.outbox.mark_failed(notice.notice_id, f"{type(exc).__name__}: {exc}", next_at)
                await uow.commit()
            continue
        async with uow_factory() as uow:
            await uow.outbox.mark_sent(notice.notice_id, now)
            await uow.commit()
        sent += 1
    return DeliveryReport(sent, failed)
