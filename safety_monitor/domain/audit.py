"""Owns the tamper-evident audit trail: its events, the hash chain that links each entry to the one before, and
the walk that finds the first entry that does not verify."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

GENESIS = "0" * 64  # the "previous hash" of the first entry


class AuditEvent(StrEnum):
    REVIEW = "review"  # a review action (acknowledge, adjudicate, ...): detail names the kind and the change
    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login-failed"
    LOCKOUT = "lockout"  # the failure that locked the account
    LOGIN_REFUSED = "login-refused"  # a locked or disabled account tried to log in
    USER_ADDED = "user-added"
    USER_DISABLED = "user-disabled"
    PASSWORD_SET = "password-set"  # noqa: S105 (an event name)
    TOKEN_ISSUED = "token-issued"  # noqa: S105 (an event name)
    TOKENS_REVOKED = "tokens-revoked"
    PUBLISH_REFUSED = "publish-refused"  # a site account sent messages of another site: the whole request refused


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What to append: the chain position and hashes are given by `link`."""

    at: datetime
    actor: str  # the user name acting ("system" for the command line without a user, "anonymous" before login)
    event: AuditEvent
    target: str  # what it is about: an alert key, a user name
    detail: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One stored row: its place in the chain, its content (detail as canonical JSON), the previous row's hash and
    its own."""

    seq: int
    at: datetime
    actor: str
    event: str
    target: str
    detail: str
    prev_hash: str
    hash: str


def canonical_detail(detail: Mapping[str, str | None]) -> str:
    return json.dumps(dict(detail), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(seq: int, at: datetime, actor: str, event: str, target: str, detail: str, prev_hash: str) -> str:
    """SHA-256 over the entry's fields and the previous hash, as canonical JSON (so no field can run into the next:
    "ab"+"c" and "a"+"bc" hash differently). Times are hashed in UTC to the microsecond, as both databases keep them.
    """
    body = [seq, at.isoformat(timespec="microseconds"), actor, event, target, detail, prev_hash]
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link(record: AuditRecord, previous: AuditEntry | None) -> AuditEntry:
    """The entry that follows `previous` (None: the first of the chain)."""
    seq = previous.seq + 1 if previous else 1
    prev_hash = previous.hash if previous else GENESIS
    detail = canonical_detail(record.detail)
    digest = entry_hash(seq, record.at, record.actor, record.event.value, record.target, detail, prev_hash)
    return AuditEntry(seq, record.at, record.actor, record.event.value, record.target, detail, prev_hash, digest)


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The result of walking the chain: how many entries verified, and the first that did not (with why)."""

    verified: int
    broken_at: int | None = None  # seq of the first entry that does not verify
    problem: str | None = None
    head: str = GENESIS  # the hash of the last verified entry: record it elsewhere to detect a cut tail

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(entries: Iterable[AuditEntry]) -> ChainCheck:
    """Walk entries in stored order. A changed row fails its own hash; a removed row leaves a gap in `seq` and a
    `prev_hash` that names a row no longer there; rows swapped in place fail their hashes (the position is hashed).
    Removing the newest entries leaves a shorter chain that verifies: compare `head` with a copy kept elsewhere."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainCheck(count, entry.seq, f"entry {expected_seq} is missing (found {entry.seq} next)", prev_hash)
        if entry.prev_hash != prev_hash:
            return ChainCheck(count, entry.seq, "its previous-entry hash does not match the entry before it", prev_hash)
        digest = entry_hash(entry.seq, entry.at, entry.actor, entry.event, entry.target, entry.detail, entry.prev_hash)
        if digest != entry.hash:
            return ChainCheck(
                count, entry.seq, "its content does not match its hash (changed after it was written)", prev_hash
            )
        expected_seq, prev_hash, count = expected_seq + 1, entry.hash, count + 1
    return ChainCheck(count, head=prev_hash)
