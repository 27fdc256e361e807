"""Owns sending the outbox after commit: render, send, record as sent; retry failures with backoff."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from safety_monitor.domain.routing import Routing
from safety_monitor.service.notifications import ALERTS_MAIL, FlushReport, flush_due
from safety_monitor.service.ports import InlineImage, Mailer, OutgoingMail, Renderer, UnitOfWorkFactory
from safety_monitor.service.records import Notice

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
    flushed: FlushReport | None = None  # the groups emailed, held and still waiting in this pass


DIGEST_MAIL = "digest"  # outbox kind of a scheduled digest (context: the digest's, plus its template name)


def render_notice(renderer: Renderer, notice: Notice) -> tuple[str, str, str, tuple[InlineImage, ...]]:
    """(subject, text, html, inline images) of one outbox email. A group of one alert reads like a single-alert
    email; a digest carrying the DSMB report brings its charts as images the HTML references by cid:."""
    if notice.kind == ALERTS_MAIL:
        items = notice.context["notifications"]
        if len(items) == 1:
            return (*renderer.alert_mail(items[0]), ())
        return (*renderer.render("alert_group", notice.context), ())
    if notice.kind == DIGEST_MAIL:
        return renderer.render_with_images(str(notice.context["template"]), notice.context)
    return (*renderer.alert_mail(notice.context), ())  # one alert change per row (rows written before routing)


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
    routing: Routing | None = None,
    ignore_waits: bool = False,
) -> DeliveryReport:
    """Email the due notification groups (into the outbox), then send every outbox email that is due.

    Each email is marked sent in its own transaction right after the SMTP server accepted it; a crash in
    between re-sends it with the same Message-ID, which mail clients fold together. `routing` brings the
    silences and inhibit rules in force (without it nothing is held back)."""
    flushed = await flush_due(uow_factory, routing, now, ignore_waits=ignore_waits)
    async with uow_factory() as uow:
        due = await uow.outbox.due(now, limit)
    sent = failed = 0
    for notice in due:
        subject, text, html, images = render_notice(renderer, notice)
        mail = OutgoingMail(
            message_id(notice.notice_id, mail_domain), sender, notice.recipients, subject, text, html, images
        )
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
    return DeliveryReport(sent, failed, flushed)
