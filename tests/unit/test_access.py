"""The workspace's policy table and account rules: DSMB members read and act on nothing, monitors review, admins
manage users, a site publishes and does nothing else; passwords of at least 12 characters; ten failures in a row lock an account; sessions expire."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from safety_monitor.domain.access import POLICY, Action, Role, may
from safety_monitor.domain.users import (
    LOCKOUT,
    SESSION_ABSOLUTE,
    SESSION_IDLE,
    AccountRefused,
    Session,
    User,
    after_failure,
    after_success,
    check_name,
    check_password,
    check_site,
)
from safety_monitor.settings import Settings, SettingsError

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
REVIEW = [Action.ACKNOWLEDGE, Action.ADJUDICATE, Action.CAUSALITY, Action.EXPECTEDNESS]


def test_every_role_has_a_row_and_every_reviewer_reads() -> None:
    assert set(POLICY) == set(Role)
    assert all(may(role, Action.READ) for role in Role if role is not Role.SITE)


def test_a_site_publishes_and_nothing_else_and_nobody_else_publishes() -> None:
    assert POLICY[Role.SITE] == frozenset({Action.PUBLISH_MESSAGES})
    assert [role for role in Role if may(role, Action.PUBLISH_MESSAGES)] == [Role.SITE]


def test_a_site_account_names_its_site_and_no_other_role_has_one() -> None:
    assert check_site(Role.SITE, "012") == "012"
    assert check_site(Role.MEDICAL_MONITOR, None) is None
    for bad in (None, "", "01 2", "<b>", "x" * 65):
        with pytest.raises(AccountRefused, match="a site account needs --site-id"):
            check_site(Role.SITE, bad)
    with pytest.raises(AccountRefused, match="for site accounts only, not for a dsmb-member"):
        check_site(Role.DSMB_MEMBER, "012")


@pytest.mark.parametrize("action", [*REVIEW, Action.COMMENT, Action.REPORT_SUBMITTED, Action.MANAGE_USERS])
def test_dsmb_members_act_on_nothing(action: Action) -> None:
    assert not may(Role.DSMB_MEMBER, action)


def test_monitors_review_and_admins_manage_users() -> None:
    assert all(may(Role.MEDICAL_MONITOR, a) for a in [*REVIEW, Action.COMMENT, Action.REPORT_SUBMITTED])
    assert not may(Role.MEDICAL_MONITOR, Action.MANAGE_USERS)
    assert may(Role.ADMIN, Action.MANAGE_USERS) and not any(may(Role.ADMIN, a) for a in REVIEW)


@pytest.mark.parametrize(("password", "ok"), [("x" * 11, False), ("x" * 12, True), ("x" * 1025, False)])
def test_passwords_have_at_least_12_characters(password: str, ok: bool) -> None:
    if ok:
        assert check_password(password) == password
    else:
        with pytest.raises(AccountRefused):
            check_password(password)


@pytest.mark.parametrize("name", ["", "a b", "<script>", "x" * 65, "-lead"])
def test_user_names_are_plain(name: str) -> None:
    with pytest.raises(AccountRefused, match="is not allowed"):
        check_name(name)


def test_the_tenth_failure_in_a_row_locks_for_a_while_and_a_success_resets() -> None:
    user = User("dr.li", Role.MEDICAL_MONITOR, T0)
    for n in range(9):
        user, locked = after_failure(user, T0)
        assert not locked and user.failed_logins == n + 1
    user, locked = after_failure(user, T0)
    assert locked and user.locked(T0) and user.locked(T0 + LOCKOUT - timedelta(seconds=1))
    assert not user.locked(T0 + LOCKOUT)
    assert after_success(replace(user, failed_logins=5)).failed_logins == 0


def test_sessions_expire_when_idle_and_at_their_absolute_lifetime() -> None:
    session = Session("dr.li", T0, T0, "csrf")
    assert not session.expired(T0 + SESSION_IDLE - timedelta(seconds=1))
    assert session.expired(T0 + SESSION_IDLE)
    busy = Session("dr.li", T0, T0 + SESSION_ABSOLUTE - timedelta(minutes=1), "csrf")
    assert not busy.expired(T0 + SESSION_ABSOLUTE - timedelta(seconds=1))
    assert busy.expired(T0 + SESSION_ABSOLUTE)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("https://safety.example.org", True), ("http://127.0.0.1:8000/", True), ("safety.example.org", False),
     ("javascript:alert(1)", False), ("https://a b", False)],
)  # fmt: skip
def test_public_url_is_an_http_address(value: str, ok: bool) -> None:
    if ok:
        assert Settings.from_env({"PUBLIC_URL": value}).public_url == value
    else:
        with pytest.raises(SettingsError, match="PUBLIC_URL="):
            Settings.from_env({"PUBLIC_URL": value})
