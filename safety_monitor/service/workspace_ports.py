"""Owns the ports of the review workspace: user accounts, API tokens, sessions, the audit log, password hashing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from safety_monitor.domain.audit import AuditEntry
from safety_monitor.domain.users import Session, User


class UserRepository(Protocol):
    async def get(self, name: str) -> User | None: ...
    async def password_hash(self, name: str) -> str | None: ...

    async def add(self, user: User, password_hash: str) -> None:
        """Insert a new account (the caller has checked that the name is free)."""
        ...

    async def put(self, user: User) -> None:
        """Store the account's role, disabled flag and login counters (never its password)."""
        ...

    async def set_password(self, name: str, password_hash: str) -> None: ...
    async def list(self) -> list[User]: ...


class ApiTokenRepository(Protocol):
    """Personal API tokens, kept only as SHA-256 hashes."""

    async def add(self, token_hash: str, user_name: str, at: datetime) -> None: ...

    async def owner(self, token_hash: str) -> str | None:
        """Whose token this is, if it exists and is not revoked."""
        ...

    async def revoke(self, user_name: str, at: datetime) -> int:
        """Revoke every live token of the user; how many were revoked."""
        ...


class SessionRepository(Protocol):
    """Browser sessions by the SHA-256 of their cookie value."""

    async def add(self, session_hash: str, session: Session) -> None: ...
    async def get(self, session_hash: str) -> Session | None: ...
    async def touch(self, session_hash: str, at: datetime) -> None: ...
    async def remove(self, session_hash: str) -> None: ...

    async def remove_for(self, user_name: str) -> int:
        """End every session of the user (disabled, or a new password); how many ended."""
        ...


class AuditLogRepository(Protocol):
    """The hash-chained audit trail: rows are appended, never changed (the SQL table refuses UPDATE and DELETE)."""

    async def last(self) -> AuditEntry | None:
        """The newest entry. In SQL this also takes the append lock, so appends in concurrent transactions queue up
        instead of both linking to the same entry (the primary key on `seq` would refuse the second anyway)."""
        ...

    async def add(self, entries: Sequence[AuditEntry]) -> None: ...

    async def page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        """Entries in chain order after `after_seq` (0: from the start): how `audit verify` walks the chain."""
        ...

    async def for_target(self, target: str) -> list[AuditEntry]: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False for a mismatch or an unreadable hash (never raises for either)."""
        ...
