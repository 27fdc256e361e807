"""Owns writing to and checking the audit trail: appends linked into the hash chain inside the caller's
transaction, and the walk of the whole chain that `safety-monitor audit verify` runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from safety_monitor.domain.audit import (
    AuditEntry,
    AuditEvent,
    AuditRecord,
    ChainCheck,
    canonical_detail,
    link,
    verify,
)
from safety_monitor.domain.review import audit_record
from safety_monitor.service.ports import UnitOfWork, UnitOfWorkFactory

_PAGE = 5000


async def append_audit(uow: UnitOfWork, records: Sequence[AuditRecord]) -> list[AuditEntry]:
    """Link `records` after the newest entry and add them, in the caller's transaction: they are kept exactly when
    what they record is (a review action and its audit entry commit together or not at all)."""
    if not records:
        return []
    previous = await uow.audit_log.last()
    entries = []
    for record in records:
        previous = link(record, previous)
        entries.append(previous)
    await uow.audit_log.add(entries)
    return entries


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The chain's check, and the review_actions rows that the chain does not vouch for (changed, added or removed
    behind the application's back); rows recorded before the chain's first entry are only counted."""

    chain: ChainCheck
    unmatched_reviews: list[str] = field(default_factory=list)
    reviews_before_chain: int = 0

    @property
    def intact(self) -> bool:
        return self.chain.intact and not self.unmatched_reviews


def _review_key(at: datetime, actor: str, target: str, detail: str) -> tuple[str, str, str, str]:
    return at.isoformat(timespec="microseconds"), actor, target, detail


async def verify_audit_log(uow_factory: UnitOfWorkFactory) -> AuditReport:
    """Walk the whole chain, page by page, and compare every review action with its entry, in one read."""
    async with uow_factory() as uow:
        entries: list[AuditEntry] = []
        after = 0
        while True:
            page = await uow.audit_log.page(after, _PAGE)
            entries.extend(page)
            if len(page) < _PAGE:
                break
            after = page[-1].seq
        actions = await uow.review_actions.every()
    check = verify(entries)
    vouched = Counter(
        _review_key(e.at, e.actor, e.target, e.detail) for e in entries if e.event == AuditEvent.REVIEW.value
    )
    start = entries[0].at if entries else None
    unmatched, before = [], 0
    for action in actions:
        if start is None or action.at < start:
            before += 1
            continue
        record = audit_record(action)
        key = _review_key(record.at, record.actor, record.target, canonical_detail(record.detail))
        if vouched[key] > 0:
            vouched[key] -= 1
        else:
            unmatched.append(f"review action {action.kind.value} on {action.alert_key} at {action.at.isoformat()}")
    unmatched.extend(f"audit entry of a review on {k[2]} at {k[0]} has no review_actions row" for k in +vouched)
    return AuditReport(check, unmatched, before)
