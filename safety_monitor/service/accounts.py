"""Owns user accounts and how people prove who they are: adding, disabling and re-passwording users, personal API
tokens, logging in and out with server-side sessions and lockout; every change and login goes to the audit log."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from safety_monitor.domain.access import Action, Role, may
from safety_monitor.domain.audit import AuditEvent, AuditRecord
from safety_monitor.domain.users import (
    FAILURES_BEFORE_LOCKOUT,
    AccountRefused,
    Session,
    User,
    after_failure,
    after_success,
    check_name,
    check_password,
    check_site,
)
from safety_monitor.service.audit import append_audit
from safety_monitor.service.ports import UnitOfWork, UnitOfWorkFactory
from safety_monitor.service.workspace_ports import PasswordHasher

SYSTEM = "system"  # the actor of a change made on the command line (whoever holds the database credentials)
ANONYMOUS = "anonymous"
TOKEN_PREFIX = "smt_"  # noqa: S105 (marks a safety-monitor token, so secret scanners can find leaked ones)


class LoginRefused(Exception):
    """Wrong name or password, a locked or a disabled account: the message never says which (ASVS V2.2)."""

    def __init__(self) -> None:
        super().__init__("invalid user name or password, or the account is locked: try again later")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _record(at: datetime, actor: str, event: AuditEvent, target: str, **detail: str | None) -> AuditRecord:
    return AuditRecord(at, actor, event, target, detail)


async def _existing(uow: UnitOfWork, name: str) -> User:
    user = await uow.users.get(name)
    if user is None:
        raise AccountRefused(f"no user {name[:64]!r} (see `safety-monitor users list`)")
    return user


async def add_user(
    uow_factory: UnitOfWorkFactory,
    hasher: PasswordHasher,
    name: str,
    role: Role,
    password: str,
    *,
    at: datetime,
    actor: str = SYSTEM,
    site_id: str | None = None,
) -> User:
    """Add an account; a `site` account names the one trial site it publishes for (`site_id`)."""
    check_name(name)
    check_site(role, site_id)
    check_password(password)
    password_hash = await hasher.hash(password)
    async with uow_factory() as uow:
        if await uow.users.get(name) is not None:
            raise AccountRefused(f"user {name!r} exists already (use `users set-password` to change the password)")
        user = User(name, role, at, site_id=site_id)
        await uow.users.add(user, password_hash)
        detail = {"role": role.value, **({"site_id": site_id} if site_id is not None else {})}
        await append_audit(uow, [_record(at, actor, AuditEvent.USER_ADDED, name, **detail)])
        await uow.commit()
    return user


async def list_users(uow_factory: UnitOfWorkFactory) -> list[User]:
    async with uow_factory() as uow:
        return await uow.users.list()


async def disable_user(uow_factory: UnitOfWorkFactory, name: str, *, at: datetime, actor: str = SYSTEM) -> User:
    """Disable an account: its sessions end and its tokens are revoked in the same transaction."""
    async with uow_factory() as uow:
        user = await _existing(uow, name)
        disabled = replace(user, disabled=True)
        await uow.users.put(disabled)
        sessions = await uow.sessions.remove_for(name)
        tokens = await uow.api_tokens.revoke(name, at)
        await append_audit(
            uow,
            [_record(at, actor, AuditEvent.USER_DISABLED, name, sessions_ended=str(sessions), tokens=str(tokens))],
        )
        await uow.commit()
    return disabled


async def set_password(
    uow_factory: UnitOfWorkFactory,
    hasher: PasswordHasher,
    name: str,
    password: str,
    *,
    at: datetime,
    actor: str = SYSTEM,
) -> None:
    """A new password ends the user's sessions and lifts a lockout (an admin has vouched for the person)."""
    check_password(password)
    password_hash = await hasher.hash(password)
    async with uow_factory() as uow:
        user = await _existing(uow, name)
        await uow.users.set_password(name, password_hash)
        await uow.users.put(after_success(user))
        sessions = await uow.sessions.remove_for(name)
        await append_audit(uow, [_record(at, actor, AuditEvent.PASSWORD_SET, name, sessions_ended=str(sessions))])
        await uow.commit()


async def issue_token(uow_factory: UnitOfWorkFactory, name: str, *, at: datetime, actor: str = SYSTEM) -> str:
    """A new personal API token (256 random bits); only its hash is stored, so this is the one time it is seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with uow_factory() as uow:
        user = await _existing(uow, name)
        if user.disabled:
            raise AccountRefused(f"user {name!r} is disabled: no token is issued")
        await uow.api_tokens.add(digest(token), name, at)
        await append_audit(uow, [_record(at, actor, AuditEvent.TOKEN_ISSUED, name, token=digest(token)[:12])])
        await uow.commit()
    return token


async def revoke_tokens(uow_factory: UnitOfWorkFactory, name: str, *, at: datetime, actor: str = SYSTEM) -> int:
    async with uow_factory() as uow:
        await _existing(uow, name)
        count = await uow.api_tokens.revoke(name, at)
        await append_audit(uow, [_record(at, actor, AuditEvent.TOKENS_REVOKED, name, revoked=str(count))])
        await uow.commit()
    return count


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """A new session: the cookie value (only its hash is stored), the user and the CSRF token of its forms."""

    session_id: str
    user: User
    csrf_token: str


async def log_in(
    uow_factory: UnitOfWorkFactory, hasher: PasswordHasher, name: str, password: str, *, at: datetime
) -> LoggedIn:
    """Check the password and open a session, or raise LoginRefused. The failure counter, a lockout and the audit
    entry are committed whether the login succeeds or not."""
    shown = name[:64]
    async with uow_factory() as uow:
        user = await uow.users.get(name)
        stored = await uow.users.password_hash(name) if user is not None else None
        if user is None or stored is None:
            # Hashing costs what a real check costs: the answer's timing does not tell which user names exist.
            await hasher.hash(password)
            await append_audit(uow, [_record(at, ANONYMOUS, AuditEvent.LOGIN_FAILED, shown, why="unknown user")])
            await uow.commit()
            raise LoginRefused()
        if user.disabled or user.locked(at) or not may(user.role, Action.READ):
            until = user.locked_until.isoformat() if user.locked_until else "?"
            why = "disabled" if user.disabled else f"locked until {until}"
            if not user.disabled and not user.locked(at):  # a site account: it publishes with a token, no page
                why = f"a {user.role.value} account has no pages to log in to"
            await append_audit(uow, [_record(at, user.name, AuditEvent.LOGIN_REFUSED, user.name, why=why)])
            await uow.commit()
            raise LoginRefused()
        if not await hasher.verify(stored, password):
            failed, locked = after_failure(user, at)
            await uow.users.put(failed)
            event = AuditEvent.LOCKOUT if locked else AuditEvent.LOGIN_FAILED
            if locked and failed.locked_until is not None:
                detail = f"locked until {failed.locked_until.isoformat()} after {FAILURES_BEFORE_LOCKOUT} failures"
            else:
                detail = f"wrong password ({failed.failed_logins} in a row)"
            await append_audit(uow, [_record(at, user.name, event, user.name, why=detail)])
            await uow.commit()
            raise LoginRefused()
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await uow.users.put(after_success(user))
        await uow.sessions.add(digest(session_id), Session(user.name, at, at, csrf))
        await append_audit(uow, [_record(at, user.name, AuditEvent.LOGIN, user.name, session=digest(session_id)[:12])])
        await uow.commit()
    return LoggedIn(session_id, user, csrf)


# A session's last-use time is written at most this often, so reading pages does not write on every request.
_TOUCH_EVERY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class SessionUser:
    user: User
    session: Session


async def session_user(uow_factory: UnitOfWorkFactory, session_id: str, *, at: datetime) -> SessionUser | None:
    """The active user of a session cookie; None when it is unknown, expired (then removed) or the user disabled."""
    key = digest(session_id)
    async with uow_factory() as uow:
        session = await uow.sessions.get(key)
        if session is None:
            return None
        user = await uow.users.get(session.user)
        if user is None or user.disabled or session.expired(at):
            await uow.sessions.remove(key)
            await uow.commit()
            return None
        if (at - session.last_seen_at).total_seconds() >= _TOUCH_EVERY_SECONDS:
            await uow.sessions.touch(key, at)
            await uow.commit()
    return SessionUser(user, session)


async def log_out(uow_factory: UnitOfWorkFactory, session_id: str, *, at: datetime) -> None:
    key = digest(session_id)
    async with uow_factory() as uow:
        session = await uow.sessions.get(key)
        if session is None:
            return
        await uow.sessions.remove(key)
        await append_audit(uow, [_record(at, session.user, AuditEvent.LOGOUT, session.user, session=key[:12])])
        await uow.commit()


async def token_user(uow_factory: UnitOfWorkFactory, token: str) -> User | None:
    """The active user a bearer token belongs to; None for an unknown or revoked token or a disabled user."""
    async with uow_factory() as uow:
        owner = await uow.api_tokens.owner(digest(token))
        user = await uow.users.get(owner) if owner is not None else None
    return user if user is not None and not user.disabled else None


async def active_user(uow: UnitOfWork, name: str) -> User:
    """The account a command-line user names with `--as`: it must exist and not be disabled."""
    user = await uow.users.get(name)
    if user is None:
        raise AccountRefused(f"no user {name[:64]!r}: `--as` names an account (see `safety-monitor users list`)")
    if user.disabled:
        raise AccountRefused(f"user {name!r} is disabled")
    return user
