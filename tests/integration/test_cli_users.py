"""`safety-monitor users` and `safety-monitor audit verify` as an admin uses them, on the embedded SQLite store:
accounts with argon2id passwords, API tokens kept as hashes, and a hash chain that names the first row that was
changed, removed or reordered behind the database's back."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.cli_harness import invoke, invoke_with_input, use_embedded_defaults
from tests.conftest import ROOT

PASSWORD = "correct horse battery"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = use_embedded_defaults(monkeypatch, tmp_path, ROOT / "tests" / "data" / "skeleton_rules")
    invoke("db", "upgrade")  # `users` changes an existing database; it creates none (as every command but intake)
    return folder


def db(workdir: Path) -> sqlite3.Connection:
    return sqlite3.connect(workdir / "var" / "safety-monitor.db")


def test_users_add_list_disable_and_set_password(workdir: Path) -> None:
    added = invoke_with_input(PASSWORD + "\n", "users", "add", "dr.li", "--role", "medical-monitor", "--password-stdin")
    assert added.output.strip() == "user dr.li added (medical-monitor)"
    invoke_with_input(PASSWORD + "\n", "users", "add", "prof.chen", "--role", "dsmb-member", "--password-stdin")
    with db(workdir) as connection:
        (stored,) = connection.execute("select password_hash from app_user where name = 'dr.li'").fetchone()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    short = invoke_with_input("too short\n", "users", "add", "x", "--role", "admin", "--password-stdin", code=1)
    assert "the password is too short: at least 12 characters" in short.output
    again = invoke_with_input(PASSWORD + "\n", "users", "add", "dr.li", "--role", "admin", "--password-stdin", code=1)
    assert "user 'dr.li' exists already" in again.output
    bad_name = invoke_with_input(PASSWORD, "users", "add", "<b>x</b>", "--role", "admin", "--password-stdin", code=1)
    assert "is not allowed" in bad_name.output
    bad_role = invoke_with_input(PASSWORD, "users", "add", "y", "--role", "nurse", "--password-stdin", code=2)
    assert "'nurse' is not one of 'medical-monitor', 'dsmb-member', 'admin'" in bad_role.output

    listed = invoke("users", "list").output.splitlines()
    assert [line.split() for line in listed] == [
        ["dr.li", "medical-monitor", "active"],
        ["prof.chen", "dsmb-member", "active"],
    ]
    invoke("users", "disable", "prof.chen")
    assert invoke("users", "list").output.splitlines()[1].split() == ["prof.chen", "dsmb-member", "disabled"]
    invoke("users", "disable", "nobody", code=1)

    invoke_with_input("a new password of some length\n", "users", "set-password", "dr.li", "--password-stdin")
    with db(workdir) as connection:
        (changed,) = connection.execute("select password_hash from app_user where name = 'dr.li'").fetchone()
    assert changed != stored and changed.startswith("$argon2id$")
    events = [row[0] for row in db(workdir).execute("select event from audit_log order by seq")]
    assert events == ["user-added", "user-added", "user-disabled", "password-set"]


def test_a_token_is_printed_last_and_stored_only_as_a_hash(workdir: Path) -> None:
    invoke_with_input(PASSWORD + "\n", "users", "add", "dr.li", "--role", "medical-monitor", "--password-stdin")
    token = invoke("users", "token", "dr.li").output.splitlines()[-1]
    assert token.startswith("smt_") and len(token) > 40
    with db(workdir) as connection:
        rows = connection.execute("select token_hash, revoked_at from api_token").fetchall()
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), None)]
    assert invoke("users", "revoke-tokens", "dr.li").output.strip() == "1 token(s) of dr.li revoked"
    with db(workdir) as connection:
        assert connection.execute("select revoked_at is not null from api_token").fetchone() == (1,)


def _chain(workdir: Path, entries: int) -> None:
    for n in range(entries):
        invoke_with_input(PASSWORD + "\n", "users", "add", f"user{n}", "--role", "admin", "--password-stdin")
    assert invoke("audit", "verify").output.startswith(f"audit log intact: {entries} entries; head ")


def _tamper(workdir: Path, *statements: str) -> None:
    """What someone with the database's credentials can do: drop the append-only triggers and edit rows."""
    with db(workdir) as connection:
        connection.execute("drop trigger audit_log_no_update")
        connection.execute("drop trigger audit_log_no_delete")
        for statement in statements:
            connection.execute(statement)


def test_the_triggers_refuse_changes_to_the_audit_log(workdir: Path) -> None:
    _chain(workdir, 2)
    with db(workdir) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"):
        connection.execute("update audit_log set actor = 'x'")
    with db(workdir) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE refused"):
        connection.execute("delete from audit_log")


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (["update audit_log set target = 'user9' where seq = 3"], "BROKEN at entry 3: its content does not match"),
        (["delete from audit_log where seq = 2"], "BROKEN at entry 3: entry 2 is missing (found 3 next)"),
        (
            [
                "update audit_log set seq = 100 where seq = 2",
                "update audit_log set seq = 2 where seq = 4",
                "update audit_log set seq = 4 where seq = 100",
            ],
            "BROKEN at entry 2: its previous-entry hash does not match",
        ),
    ],
    ids=["changed", "removed", "reordered"],
)
def test_audit_verify_names_the_first_entry_that_does_not_verify(
    workdir: Path, statements: list[str], message: str
) -> None:
    _chain(workdir, 5)
    _tamper(workdir, *statements)
    broken = invoke("audit", "verify", code=1)
    assert message in broken.output


def test_a_site_account_names_its_site_and_only_a_site_account_has_one(workdir: Path) -> None:
    added = invoke_with_input(
        PASSWORD + "\n", "users", "add", "edc.site-012", "--role", "site", "--site-id", "012", "--password-stdin"
    )
    assert added.output.strip() == "user edc.site-012 added (site, site 012)"
    listed = invoke("users", "list").output
    assert "edc.site-012" in listed and "site 012" in listed
    token = invoke("users", "token", "edc.site-012").output.strip().splitlines()[-1]
    assert token.startswith("smt_")
    with db(workdir) as connection:
        assert connection.execute("select role, site_id from app_user where name = 'edc.site-012'").fetchone() == (
            "site",
            "012",
        )
    nameless = invoke_with_input(PASSWORD + "\n", "users", "add", "edc", "--role", "site", "--password-stdin", code=1)
    assert "a site account needs --site-id" in nameless.output
    reviewer = ("users", "add", "dr.wu", "--role", "medical-monitor", "--site-id", "012", "--password-stdin")
    assert "--site-id is for site accounts only" in invoke_with_input(PASSWORD + "\n", *reviewer, code=1).output
    hostile = ("users", "add", "edc2", "--role", "site", "--site-id", "012'; drop", "--password-stdin")
    assert "a site account needs --site-id" in invoke_with_input(PASSWORD + "\n", *hostile, code=1).output
