"""Owns the workspace's user accounts: names, password rules, lockout after failed logins, and sessions' expiry."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from safety_monitor.domain.access import Role

# OWASP ASVS 4.0 V2.1.1: passwords of at least 12 characters; V2.2.1: anti-automation (lockout) on failures.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # hashing cost grows with length: refuse a megabyte "password"
FAILURES_BEFORE_LOCKOUT = 10  # ten failures in a row lock the account ...
LOCKOUT = timedelta(minutes=15)  # ... for this long; the right password is refused meanwhile
# ASVS V3.3.2: sessions end after an idle period and after an absolute lifetime, whatever the activity.
SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class AccountRefused(ValueError):
    """A user change the rules do not allow; the message says why in plain words."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    created_at: datetime
    disabled: bool = False
    failed_logins: int = 0  # failures in a row since the last success
    locked_until: datetime | None = None
    site_id: str | None = None  # the trial site a `site` account publishes for (None for every other role)

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise AccountRefused(
            f"user name {name[:70]!r} is not allowed: 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRefused(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountRefused(f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters")
    return password


def check_site(role: Role, site_id: str | None) -> str | None:
    """A site account names its one trial site; no other role has one (a reviewer works across sites)."""
    if role is Role.SITE:
        if site_id is None or not _SITE.fullmatch(site_id):
            raise AccountRefused(
                "a site account needs --site-id: the site_id its messages carry (1-64 letters, digits, '.', '_' or '-')"
            )
        return site_id
    if site_id is not None:
        raise AccountRefused(f"--site-id is for site accounts only, not for a {role.value}")
    return None


def role_of(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise AccountRefused(f"{text!r} is not a role: use one of {', '.join(r.value for r in Role)}") from None


def after_failure(user: User, now: datetime) -> tuple[User, bool]:
    """The account after one more failed login, and whether this failure locked it."""
    failures = user.failed_logins + 1
    if failures >= FAILURES_BEFORE_LOCKOUT:
        return replace(user, failed_logins=0, locked_until=now + LOCKOUT), True
    return replace(user, failed_logins=failures), False


def after_success(user: User) -> User:
    return replace(user, failed_logins=0, locked_until=None)


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: whose, when it began, when it was last used, and its CSRF token."""

    user: str
    created_at: datetime
    last_seen_at: datetime
    csrf_token: str

    def expired(self, now: datetime) -> bool:
        return now - self.last_seen_at >= SESSION_IDLE or now - self.created_at >= SESSION_ABSOLUTE
