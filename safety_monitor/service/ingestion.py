"""Owns a site's publication over HTTPS: the per-site rate limit, the check that every message is the token's own
site's, decoding at the project's one boundary, and the durable receipt the site gets back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from safety_monitor.domain.access import Role
from safety_monitor.domain.audit import AuditEvent, AuditRecord
from safety_monitor.domain.rate_limit import SiteRateLimiter
from safety_monitor.domain.users import User
from safety_monitor.service.audit import append_audit
from safety_monitor.service.deadlines import check_deadlines
from safety_monitor.service.handling import handle_batch
from safety_monitor.service.pipeline import PipelineConfig, same_content
from safety_monitor.service.ports import Clock, UnitOfWorkFactory
from safety_monitor.service.records import InboundMessage, RejectedMessage

log = logging.getLogger(__name__)

Item = InboundMessage | RejectedMessage
Decoder = Callable[[str, str], Item]
"""The wire format's one decoding boundary (streams/decoding.decode), as the service layer receives it."""


@dataclass(frozen=True, slots=True)
class DeadLettered:
    msg_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the site is told, once the messages are durable: how many were taken, how many it had sent before
    (same msg_id, same content: counted, never applied twice), and which were set aside as dead letters, why."""

    accepted: int
    duplicates: int
    dead_lettered: tuple[DeadLettered, ...] = ()


class MessageSink(Protocol):
    """Where a site's batch goes. `deliver` returns only once the batch is durable (committed to the database, or
    written to Kafka with acks=all); if it raises, nothing was acknowledged and the site must retry."""

    async def deliver(self, batch: Sequence[Item]) -> Receipt: ...


class NotASite(Exception):
    """The token's account is not a site account with a site (the policy table should have refused it)."""


class ForeignSite(Exception):
    """The request holds messages of another site than the token's: all of it is refused (403)."""

    def __init__(self, own: str, foreign: Sequence[str]) -> None:
        self.own = own
        self.foreign = tuple(foreign)
        shown = ", ".join(repr(s[:64]) for s in foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        super().__init__(
            f"this token publishes for site {own!r} only; the request holds messages of site(s) {shown}: "
            "nothing of it was accepted"
        )


class RateLimited(Exception):
    """The site sent more than its allowance (429); `retry_after_s` says when the same request fits."""

    def __init__(self, site_id: str, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"site {site_id!r} is over its rate limit: retry after {retry_after_s} s")


@dataclass
class EmbeddedSink:
    """The embedded runtime: the batch goes through the same pipeline and error policy as `replay` and `serve`
    (service/handling.handle_batch), which returns only after commit. Then, as `replay` and `serve` do after each
    file, the reporting clocks are checked at once: a case already past due when its report arrives is escalated
    now, not at the scheduler's next pass."""

    store: UnitOfWorkFactory
    pipeline: Callable[[], PipelineConfig]  # read per batch, so a hot reload of the rules applies to the next one
    clock: Clock

    async def deliver(self, batch: Sequence[Item]) -> Receipt:
        pipeline = self.pipeline()
        outcome = await handle_batch(self.store, batch, pipeline, self.clock)
        try:
            await check_deadlines(self.store, pipeline, self.clock.now())
        except Exception:  # the batch is durable: the scheduler's next pass checks the clocks again
            log.exception("reporting clocks not checked after a site batch; the scheduler will")
        letters = tuple(DeadLettered(letter.msg_id, letter.reason) for letter in outcome.dead_letters)
        return Receipt(outcome.received - outcome.duplicates - len(letters), outcome.duplicates, letters)


async def received_before(store: UnitOfWorkFactory, batch: Sequence[Item]) -> list[bool]:
    """For each item, whether the inbox already holds its msg_id with the same content (a retried message): the
    Kafka sink counts those as duplicates and does not produce them again. A message in flight (produced, not yet
    handled by a worker) is not in the inbox yet: it is produced again and the worker's inbox drops it."""
    valid = {i.message.envelope.msg_id: i for i in batch if isinstance(i, InboundMessage)}
    if not valid:
        return [False] * len(batch)
    async with store() as uow:
        known = await uow.inbox.content_hashes(valid)
        differing = [m for m, h in known.items() if h != valid[m].content_hash]
        stored = await uow.inbox.payloads(differing) if differing else {}
    return [
        isinstance(i, InboundMessage)
        and (msg_id := i.message.envelope.msg_id) in known
        and same_content(known[msg_id], stored.get(msg_id, ""), i)
        for i in batch
    ]


@dataclass
class Ingestion:
    """What the endpoint needs, wired once: the store (for the audit trail), the decoder, the sink and the limiter."""

    store: UnitOfWorkFactory
    decode: Decoder
    sink: MessageSink
    limiter: SiteRateLimiter = field(default_factory=SiteRateLimiter)


def origin_of(site_id: str, request_id: str, index: int) -> str:
    """Where a message came from, for dead letters and the inbox: `https:SITE:REQUEST#N` (N counts from 1)."""
    return f"https:{site_id}:{request_id}#{index}"


def _claimed_site(item: Item) -> str | None:
    """The site a message says it is from; for a refused message, read from its JSON when it has a string one."""
    if isinstance(item, InboundMessage):
        return item.message.envelope.site_id
    try:
        document = json.loads(item.payload)
    except ValueError:
        return None
    site = document.get("site_id") if isinstance(document, dict) else None
    return site.strip() if isinstance(site, str) else None


async def publish_messages(
    ingestion: Ingestion, user: User, payloads: Sequence[str], *, request_id: str, at: datetime
) -> Receipt:
    """A site's batch: rate-limited per site, decoded, refused whole (and audited) when any message names another
    site, otherwise handed to the sink; the receipt comes back only once the sink made the batch durable."""
    site_id = user.site_id
    if user.role is not Role.SITE or site_id is None:
        raise NotASite(f"account {user.name!r} is not a site account")
    verdict = ingestion.limiter.take(site_id, len(payloads), at)
    if not verdict.allowed:
        log.warning("publish rate-limited site=%s messages=%d request=%s", site_id, len(payloads), request_id)
        raise RateLimited(site_id, verdict.retry_after_s)
    batch = [ingestion.decode(payload, origin_of(site_id, request_id, n)) for n, payload in enumerate(payloads, 1)]
    foreign = sorted({s for item in batch if (s := _claimed_site(item)) is not None and s != site_id})
    if foreign:
        await _audit_foreign(ingestion.store, user, site_id, foreign, len(batch), request_id, at)
        raise ForeignSite(site_id, foreign)
    if not batch:
        return Receipt(0, 0)
    return await ingestion.sink.deliver(batch)


async def _audit_foreign(
    store: UnitOfWorkFactory,
    user: User,
    site_id: str,
    foreign: Sequence[str],
    messages: int,
    request_id: str,
    at: datetime,
) -> None:
    # Site ids and counts only: the refused payloads carry subject data and stay out of the trail and the log.
    shown = ",".join(s[:64] for s in foreign[:20])
    log.warning("publish refused: foreign site user=%s site=%s request=%s", user.name, site_id, request_id)
    record = AuditRecord(
        at,
        user.name,
        AuditEvent.PUBLISH_REFUSED,
        site_id,
        {"foreign_sites": shown, "messages": str(messages), "request": request_id},
    )
    async with store() as uow:
        await append_audit(uow, [record])
        await uow.commit()
