"""Owns the in-memory repositories of the review workspace (users, tokens, sessions, audit log) for fast tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from safety_monitor.domain.audit import AuditEntry
from safety_monitor.domain.users import Session, User


@dataclass
class WorkspaceState:
    users: dict[str, User] = field(default_factory=dict)
    password_hashes: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)  # hash -> (user, revoked_at)
    sessions: dict[str, Session] = field(default_factory=dict)
    audit_log: list[AuditEntry] = field(default_factory=list)  # append-only


class _HasWorkspace(Protocol):
    @property
    def workspace(self) -> WorkspaceState: ...


class _Repo:
    def __init__(self, uow: _HasWorkspace) -> None:
        self._uow = uow

    @property
    def s(self) -> WorkspaceState:
        return self._uow.workspace


class MemoryUsers(_Repo):
    async def get(self, name: str) -> User | None:
        return self.s.users.get(name)

    async def password_hash(self, name: str) -> str | None:
        return self.s.password_hashes.get(name)

    async def add(self, user: User, password_hash: str) -> None:
        if user.name in self.s.users:
            raise KeyError(f"user {user.name!r} exists")
        self.s.users[user.name] = user
        self.s.password_hashes[user.name] = password_hash

    async def put(self, user: User) -> None:
        if user.name in self.s.users:
            self.s.users[user.name] = user

    async def set_password(self, name: str, password_hash: str) -> None:
        if name in self.s.users:
            self.s.password_hashes[name] = password_hash

    async def list(self) -> list[User]:
        return [self.s.users[name] for name in sorted(self.s.users)]


class MemoryApiTokens(_Repo):
    async def add(self, token_hash: str, user_name: str, at: datetime) -> None:
        self.s.tokens[token_hash] = (user_name, None)

    async def owner(self, token_hash: str) -> str | None:
        found = self.s.tokens.get(token_hash)
        return found[0] if found is not None and found[1] is None else None

    async def revoke(self, user_name: str, at: datetime) -> int:
        live = [h for h, (user, revoked) in self.s.tokens.items() if user == user_name and revoked is None]
        for token_hash in live:
            self.s.tokens[token_hash] = (user_name, at)
        return len(live)


class MemorySessions(_Repo):
    async def add(self, session_hash: str, session: Session) -> None:
        self.s.sessions[session_hash] = session

    async def get(self, session_hash: str) -> Session | None:
        return self.s.sessions.get(session_hash)

    async def touch(self, session_hash: str, at: datetime) -> None:
        if session_hash in self.s.sessions:
            self.s.sessions[session_hash] = replace(self.s.sessions[session_hash], last_seen_at=at)

    async def remove(self, session_hash: str) -> None:
        self.s.sessions.pop(session_hash, None)

    async def remove_for(self, user_name: str) -> int:
        ended = [h for h, s in self.s.sessions.items() if s.user == user_name]
        for session_hash in ended:
            del self.s.sessions[session_hash]
        return len(ended)


class MemoryAuditLog(_Repo):
    async def last(self) -> AuditEntry | None:
        return self.s.audit_log[-1] if self.s.audit_log else None

    async def add(self, entries: Sequence[AuditEntry]) -> None:
        self.s.audit_log.extend(entries)

    async def page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        return [e for e in self.s.audit_log if e.seq > after_seq][:limit]

    async def for_target(self, target: str) -> list[AuditEntry]:
        return [e for e in self.s.audit_log if e.target == target]
