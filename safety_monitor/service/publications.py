"""Owns what runtimes publish to outbound topics: the alert-notice and dead-letter records, and their outbox.

A runtime that publishes (the Kafka worker) stores each record in the same transaction as the batch that made
it, sends it after the commit and then marks it published. A crash between the commit and the send therefore
delays a publication instead of losing it: `publish_pending` (a scheduled job) sends whatever is still unmarked.
Delivery is at least once; `publication_id` (and the record's `notice_id` / `payload_hash`) lets a consumer drop
a repeat. The record layouts are documented in the README ("Outbound topics").
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.records import BatchOutcome, DeadLetter, Notice, Publication

ALERT_SCHEMA = "safety-monitor.alert-notice/1"
DEAD_LETTER_SCHEMA = "safety-monitor.dead-letter/1"
ALERTS = "alerts"
DEAD_LETTERS = "deadletter"

Send = Callable[[Sequence[Publication]], Awaitable[None]]


def alert_record(notice: Notice) -> dict[str, Any]:
    """What `safety.alerts` carries for each alert change (raised, escalated, updated)."""
    return {
        "schema": ALERT_SCHEMA,
        "notice_id": notice.notice_id,
        "alert_key": notice.alert_key,
        "kind": notice.kind,
        "created_at": notice.created_at.isoformat(),
        "alert": notice.context,
    }


def dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    """What `safety.deadletter` carries for each message set aside: the reason, where it came from, the payload."""
    return {
        "schema": DEAD_LETTER_SCHEMA,
        "payload_hash": letter.payload_hash,
        "msg_id": letter.msg_id,
        "reason": letter.reason,
        "origin": letter.origin,
        "received_at": letter.received_at.isoformat(),
        "payload": letter.payload,
    }


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def alert_publication(notice: Notice) -> Publication:
    context = notice.context
    key = f"{context.get('study_id', '')}:{context.get('subject_id', '')}"
    return Publication(f"alert:{notice.notice_id}", ALERTS, key, _json(alert_record(notice)), notice.created_at)


def dead_letter_publication(letter: DeadLetter) -> Publication:
    # One publication per delivery of the refused message: a redelivery (same origin) is the same publication,
    # a site re-sending the same payload later (another origin) is a new one.
    return Publication(
        f"deadletter:{letter.payload_hash}:{letter.origin}"[:200],
        DEAD_LETTERS,
        letter.msg_id or letter.payload_hash,
        _json(dead_letter_record(letter)),
        letter.received_at,
    )


def publications_of(notices: Iterable[Notice], dead_letters: Iterable[DeadLetter]) -> list[Publication]:
    return [*map(alert_publication, notices), *map(dead_letter_publication, dead_letters)]


def outcome_publications(outcome: BatchOutcome) -> list[Publication]:
    """The publications a committed batch made (its new alert notices and dead letters)."""
    return publications_of(outcome.written_notices, outcome.dead_letters)


async def mark_published(store: UnitOfWorkFactory, publications: Sequence[Publication], at: datetime) -> None:
    if not publications:
        return
    async with store() as uow:
        await uow.publications.mark_published([p.publication_id for p in publications], at)
        await uow.commit()


async def publish_pending(
    store: UnitOfWorkFactory,
    send: Send,
    now: datetime,
    *,
    older_than: timedelta = timedelta(seconds=30),
    limit: int = 1000,
) -> int:
    """Send the publications a crashed or stopped worker left unmarked, oldest first; returns how many.

    `older_than` leaves alone what a live worker has just committed and is about to send itself (sending it
    twice would be harmless, only wasteful)."""
    sent = 0
    while True:
        async with store() as uow:
            pending = await uow.publications.pending(now - older_than, limit)
        if not pending:
            return sent
        await send(pending)
        await mark_published(store, pending, now)
        sent += len(pending)
        if len(pending) < limit:
            return sent
