"""Owns producing the periodic safety digest: render it, optionally send it, and remember when it was sent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from safety_monitor.service.delivery import message_id
from safety_monitor.service.ports import Mailer, OutgoingMail, Renderer, UnitOfWorkFactory
from safety_monitor.service.views import digest_context


@dataclass(frozen=True, slots=True)
class Digest:
    subject: str
    text: str
    html: str
    context: dict[str, object]


async def build_digest(store: UnitOfWorkFactory, renderer: Renderer, *, kind: str, now: datetime) -> Digest:
    context = await digest_context(store, kind=kind, now=now)
    subject, text, html = renderer.digest(context)
    return Digest(subject, text, html, context)


async def send_digest(
    store: UnitOfWorkFactory,
    mailer: Mailer,
    digest: Digest,
    *,
    kind: str,
    recipients: tuple[str, ...],
    sender: str,
    mail_domain: str,
    now: datetime,
) -> None:
    """Send, then record the send: "alerts since the last digest" starts from here next time."""
    notice = hashlib.sha256(f"digest|{kind}|{now.isoformat()}".encode()).hexdigest()[:32]
    mail = OutgoingMail(message_id(notice, mail_domain), sender, recipients, digest.subject, digest.text, digest.html)
    await mailer.send(mail)
    async with store() as uow:
        await uow.digests.record_sent(kind, now, recipients)
        await uow.commit()
