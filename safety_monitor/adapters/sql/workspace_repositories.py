"""Owns the SQL repositories of the review workspace: users, API tokens, sessions and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from safety_monitor.adapters.sql import workspace_tables as w
from safety_monitor.domain.audit import AuditEntry
from safety_monitor.domain.users import Session, User, role_of

if TYPE_CHECKING:
    from safety_monitor.adapters.sql.unit_of_work import SqlUnitOfWork


class _Repo:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def conn(self) -> AsyncConnection:
        return self._uow.connection


def _user(row: Any) -> User:
    return User(
        name=row.name,
        role=role_of(row.role),
        created_at=row.created_at,
        disabled=row.disabled,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        site_id=row.site_id,
    )


class SqlUsers(_Repo):
    async def get(self, name: str) -> User | None:
        row = (await self.conn.execute(select(w.app_user).where(w.app_user.c.name == name))).first()
        return _user(row) if row is not None else None

    async def password_hash(self, name: str) -> str | None:
        query = select(w.app_user.c.password_hash).where(w.app_user.c.name == name)
        value = (await self.conn.execute(query)).scalar()
        return str(value) if value is not None else None

    async def add(self, user: User, password_hash: str) -> None:
        await self.conn.execute(
            insert(w.app_user).values(
                name=user.name,
                role=user.role.value,
                password_hash=password_hash,
                created_at=user.created_at,
                disabled=user.disabled,
                failed_logins=user.failed_logins,
                locked_until=user.locked_until,
                site_id=user.site_id,
            )
        )

    async def put(self, user: User) -> None:
        await self.conn.execute(
            update(w.app_user)
            .where(w.app_user.c.name == user.name)
            .values(
                role=user.role.value,
                disabled=user.disabled,
                failed_logins=user.failed_logins,
                locked_until=user.locked_until,
            )
        )

    async def set_password(self, name: str, password_hash: str) -> None:
        await self.conn.execute(update(w.app_user).where(w.app_user.c.name == name).values(password_hash=password_hash))

    async def list(self) -> list[User]:
        rows = await self.conn.execute(select(w.app_user).order_by(w.app_user.c.name))
        return [_user(row) for row in rows]


class SqlApiTokens(_Repo):
    async def add(self, token_hash: str, user_name: str, at: datetime) -> None:
        await self.conn.execute(
            insert(w.api_token).values(token_hash=token_hash, user_name=user_name, created_at=at, revoked_at=None)
        )

    async def owner(self, token_hash: str) -> str | None:
        c = w.api_token.c
        query = select(c.user_name).where(c.token_hash == token_hash, c.revoked_at.is_(None))
        value = (await self.conn.execute(query)).scalar()
        return str(value) if value is not None else None

    async def revoke(self, user_name: str, at: datetime) -> int:
        c = w.api_token.c
        result = await self.conn.execute(
            update(w.api_token).where(c.user_name == user_name, c.revoked_at.is_(None)).values(revoked_at=at)
        )
        return int(result.rowcount)


class SqlSessions(_Repo):
    async def add(self, session_hash: str, session: Session) -> None:
        await self.conn.execute(
            insert(w.web_session).values(
                session_hash=session_hash,
                user_name=session.user,
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
                csrf_token=session.csrf_token,
            )
        )

    async def get(self, session_hash: str) -> Session | None:
        c = w.web_session.c
        row = (await self.conn.execute(select(w.web_session).where(c.session_hash == session_hash))).first()
        if row is None:
            return None
        return Session(row.user_name, row.created_at, row.last_seen_at, row.csrf_token)

    async def touch(self, session_hash: str, at: datetime) -> None:
        c = w.web_session.c
        await self.conn.execute(update(w.web_session).where(c.session_hash == session_hash).values(last_seen_at=at))

    async def remove(self, session_hash: str) -> None:
        await self.conn.execute(delete(w.web_session).where(w.web_session.c.session_hash == session_hash))

    async def remove_for(self, user_name: str) -> int:
        result = await self.conn.execute(delete(w.web_session).where(w.web_session.c.user_name == user_name))
        return int(result.rowcount)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(row.seq, row.at, row.actor, row.event, row.target, row.detail, row.prev_hash, row.hash)


class SqlAuditLog(_Repo):
    async def last(self) -> AuditEntry | None:
        if self.conn.dialect.name == "postgresql":
            # Appends queue behind each other (readers are not blocked: SHARE ROW EXCLUSIVE conflicts only with
            # writers), so every transaction links to the entry that is really the newest.
            await self.conn.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
        query = select(w.audit_log).order_by(w.audit_log.c.seq.desc()).limit(1)
        row = (await self.conn.execute(query)).first()
        return _entry(row) if row is not None else None

    async def add(self, entries: Sequence[AuditEntry]) -> None:
        rows = [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "event": e.event,
                "target": e.target,
                "detail": e.detail,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            }
            for e in entries
        ]
        if rows:
            await self.conn.execute(insert(w.audit_log), rows)

    async def page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        c = w.audit_log.c
        query = select(w.audit_log).where(c.seq > after_seq).order_by(c.seq).limit(limit)
        return [_entry(row) for row in await self.conn.execute(query)]

    async def for_target(self, target: str) -> list[AuditEntry]:
        c = w.audit_log.c
        query = select(w.audit_log).where(c.target == target).order_by(c.seq)
        return [_entry(row) for row in await self.conn.execute(query)]
