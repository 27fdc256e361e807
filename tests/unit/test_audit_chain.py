"""The audit log's hash chain: each entry hashes its position, content and the previous hash, so a change, a
removal or a reordering is found at the first entry it breaks."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from safety_monitor.domain.audit import GENESIS, AuditEntry, AuditEvent, AuditRecord, link, verify

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    previous = None
    for i in range(n):
        record = AuditRecord(T0 + timedelta(minutes=i), f"user{i}", AuditEvent.LOGIN, f"user{i}", {"i": str(i)})
        previous = link(record, previous)
        entries.append(previous)
    return entries


def test_an_intact_chain_verifies_and_links_each_entry_to_the_one_before() -> None:
    entries = chain(4)
    assert entries[0].prev_hash == GENESIS and entries[0].seq == 1
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    check = verify(entries)
    assert (check.intact, check.verified, check.head) == (True, 4, entries[-1].hash)
    assert verify([]).verified == 0


@pytest.mark.parametrize(
    ("tamper", "broken_at", "problem"),
    [
        (lambda e: [e[0], replace(e[1], actor="someone else"), *e[2:]], 2, "content does not match its hash"),
        (lambda e: [e[0], replace(e[1], detail='{"i":"9"}'), *e[2:]], 2, "content does not match its hash"),
        (lambda e: [e[0], replace(e[1], at=e[1].at + timedelta(seconds=1)), *e[2:]], 2, "content does not match"),
        (lambda e: [e[0], *e[2:]], 3, "entry 2 is missing"),
        (lambda e: [e[0], replace(e[2], seq=2), replace(e[1], seq=3), e[3]], 2, "previous-entry hash does not match"),
        (lambda e: [e[1], *e[2:]], 2, "entry 1 is missing"),
    ],
    ids=["actor changed", "detail changed", "time changed", "entry removed", "entries swapped", "first removed"],
)
def test_a_tampered_chain_names_the_first_entry_that_does_not_verify(tamper, broken_at: int, problem: str) -> None:
    check = verify(tamper(chain(4)))
    assert not check.intact
    assert check.broken_at == broken_at and problem in (check.problem or "")


def test_fields_cannot_run_into_each_other() -> None:
    a = link(AuditRecord(T0, "ab", AuditEvent.LOGIN, "c", {}), None)
    b = link(AuditRecord(T0, "a", AuditEvent.LOGIN, "bc", {}), None)
    assert a.hash != b.hash
