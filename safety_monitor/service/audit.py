"""Owns writing to and checking the audit trail: appends linked into the hash chain inside the caller's
transaction, and the walk of the whole chain that `safety-monitor audit verify` runs."""

from __future__ import annotations

from collections.abc import Sequence

from safety_monitor.domain.audit import AuditEntry, AuditRecord, ChainCheck, link, verify
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


async def verify_audit_log(uow_factory: UnitOfWorkFactory) -> ChainCheck:
    """Walk the whole chain, page by page, in one read transaction."""
    async with uow_factory() as uow:
        entries: list[AuditEntry] = []
        after = 0
        while True:
            page = await uow.audit_log.page(after, _PAGE)
            entries.extend(page)
            if len(page) < _PAGE:
                break
            after = page[-1].seq
    return verify(entries)
