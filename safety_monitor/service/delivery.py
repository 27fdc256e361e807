"""Owns sending the outbox after commit: render, send, record as sent; retry failures with backoff, for as long as
it takes (an alert email is never given up), and record per recipient a permanent refusal (5xx) by the server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from safety_monitor.domain.routing import Routing
from safety_monitor.service.notifications import ALERTS_MAIL, FlushReport, flush_due
from safety_monitor.service.ports import InlineImage, Mailer, OutgoingMail, Renderer, UnitOfWorkFactory
from safety_monitor.service.records import DELIVERED, Notice

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between attempts, capped at `max_delay`, for as long as it takes: an alert email that
    was given up would be a missed alert. An email still unsent `overdue_after` its creation is overdue: shown
    in health and in the review queue, and logged as an error at every attempt."""

    first_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(minutes=30)
    overdue_after: timedelta = timedelta(minutes=15)

    def next_attempt(self, attempts_made: int, now: datetime) -> datetime:
        doublings = min(max(attempts_made - 1, 0), 32)  # 5 s x 2^32 is far past the cap: no overflow
        delay: timedelta = min(self.first_delay * (2**doublings), self.max_delay)
        return now + delay

    def overdue(self, notice: Notice, now: datetime) -> bool:
        return notice.sent_at is None and notice.created_at <= now - self.overdue_after


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int
    failed: int
    flushed: FlushReport | None = None  # the groups emailed, held and still waiting in this pass
    last_error: str | None = None  # why the last failed send failed (for a one-line summary)


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
    last_error: str | None = None
    for notice in due:
        error = await _deliver_one(uow_factory, mailer, renderer, notice, sender, mail_domain, now, retry)
        if error is None:
            sent += 1
        else:
            failed += 1
            last_error = error
    return DeliveryReport(sent, failed, flushed, last_error)


async def _deliver_one(
    uow_factory: UnitOfWorkFactory,
    mailer: Mailer,
    renderer: Renderer,
    notice: Notice,
    sender: str,
    mail_domain: str,
    now: datetime,
    retry: RetryPolicy,
) -> str | None:
    """Send one outbox email to the recipients it has not reached yet; None once none is left to try, else why
    some are left.

    A 5xx naming a recipient is permanent: that recipient is marked (and surfaced), the others still get the
    email. A 4xx, or any failure of the transport, leaves the recipients it concerns to the next attempt."""
    waiting = notice.waiting_recipients or notice.recipients
    subject, text, html, images = render_notice(renderer, notice)
    mail = OutgoingMail(message_id(notice.notice_id, mail_domain), sender, waiting, subject, text, html, images)
    attempt = notice.attempts + 1
    try:
        refused = dict(await mailer.send(mail) or {})
    except Exception as exc:  # any transport failure: keep the row, retry later, never drop it
        next_at = retry.next_attempt(attempt, now)
        level = logging.ERROR if retry.overdue(notice, now) else logging.WARNING
        log.log(
            level,
            "notify failed notice=%s alert=%s attempt=%d next=%s overdue=%s error=%s",
            notice.notice_id,
            notice.alert_key,
            attempt,
            next_at.isoformat(),
            retry.overdue(notice, now),
            _short(exc),
        )
        async with uow_factory() as uow:
            await uow.outbox.mark_failed(notice.notice_id, _short(exc), next_at)
            await uow.commit()
        return _short(exc)
    outcomes = dict(notice.recipient_outcomes)
    later: list[str] = []
    for recipient in waiting:
        if recipient not in refused:
            outcomes[recipient] = DELIVERED
            continue
        code, reply = refused[recipient]
        if 500 <= code < 600:
            outcomes[recipient] = f"{code} {reply}"[:300]
            log.error(
                "recipient refused for good notice=%s alert=%s recipient=%s reply=%d",
                notice.notice_id,
                notice.alert_key,
                recipient,
                code,
            )
        else:
            later.append(recipient)
    error: str | None = None
    async with uow_factory() as uow:
        if later:
            next_at = retry.next_attempt(attempt, now)
            error = f"{len(later)} recipient(s) refused for now: " + "; ".join(f"{r}: {refused[r][0]}" for r in later)
            await uow.outbox.mark_failed(notice.notice_id, error[:500], next_at, outcomes)
        else:
            await uow.outbox.mark_sent(notice.notice_id, now, outcomes)
        await uow.commit()
    return error


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
