"""Owns the `safety-monitor users` and `safety-monitor audit` commands: workspace accounts, their API tokens, and
the check of the audit log's hash chain."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from safety_monitor.bootstrap import App
from safety_monitor.cli.common import app_for, run_app, settings_from_env
from safety_monitor.domain.access import Role
from safety_monitor.domain.users import AccountRefused
from safety_monitor.service.accounts import (
    add_user,
    disable_user,
    issue_token,
    list_users,
    revoke_tokens,
    set_password,
)
from safety_monitor.service.audit import verify_audit_log


def _run(work: Callable[[App], Awaitable[Any]]) -> Any:
    app = app_for(settings_from_env())
    try:
        return run_app(app, work)
    except AccountRefused as exc:
        raise click.ClickException(str(exc)) from None


def _password_from_stdin() -> str:
    """One line from standard input, its line ending stripped (nothing else: spaces are part of a password)."""
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("--password-stdin: no password on standard input (give it as one line)")
    return line.removesuffix("\n").removesuffix("\r")


@click.group()
def users() -> None:
    """The accounts of the review workspace (`safety-monitor web`) and their personal API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="What the account may do.")
@click.option("--site-id", default=None, help="For --role site: the site_id its messages carry (required).")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password as one line from stdin.")
def users_add(name: str, role: str, site_id: str | None, password_stdin: bool) -> None:
    """Add an account; the password (at least 12 characters) is stored as an argon2id hash. A site account
    (--role site --site-id SITE) publishes its site's messages over the API (`users token NAME`) and nothing else."""
    password = _password_from_stdin()
    user = _run(
        lambda app: add_user(app.store, app.hasher, name, Role(role), password, at=app.clock.now(), site_id=site_id)
    )
    site = f", site {user.site_id}" if user.site_id else ""
    click.echo(f"user {user.name} added ({user.role.value}{site})")


@users.command("list")
def users_list() -> None:
    """Every account: name, role, and whether it is disabled or locked."""

    async def work(app: App) -> list[str]:
        now = app.clock.now()
        lines = []
        for user in await list_users(app.store):
            state = "disabled" if user.disabled else ("locked" if user.locked(now) else "active")
            site = f" site {user.site_id}" if user.site_id else ""
            lines.append(f"{user.name:<32} {user.role.value:<16} {state}{site}")
        return lines

    lines = _run(work)
    if not lines:
        click.echo("no users yet (add one: safety-monitor users add NAME --role ROLE --password-stdin)")
    for line in lines:
        click.echo(line)


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable an account: it cannot log in, its sessions end and its API tokens are revoked."""
    _run(lambda app: disable_user(app.store, name, at=app.clock.now()))
    click.echo(f"user {name} disabled; sessions ended and API tokens revoked")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password as one line from stdin.")
def users_set_password(name: str, password_stdin: bool) -> None:
    """Set a new password (one line on stdin): the user's sessions end and a lockout is lifted."""
    password = _password_from_stdin()
    _run(lambda app: set_password(app.store, app.hasher, name, password, at=app.clock.now()))
    click.echo(f"password of {name} set; their sessions ended")


@users.command("token")
@click.argument("name")
def users_token(name: str) -> None:
    """Create a personal API token for NAME and print it as the last line (it is stored only as a hash)."""
    token = _run(lambda app: issue_token(app.store, name, at=app.clock.now()))
    click.echo(f"API token for {name} (shown once; use it as 'Authorization: Bearer TOKEN'):", err=True)
    click.echo(token)


@users.command("revoke-tokens")
@click.argument("name")
def users_revoke_tokens(name: str) -> None:
    """Revoke every API token of NAME."""
    count = _run(lambda app: revoke_tokens(app.store, name, at=app.clock.now()))
    click.echo(f"{count} token(s) of {name} revoked")


@click.group()
def audit() -> None:
    """The tamper-evident audit log (review actions, logins, user changes)."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain; exit 0 with the number of entries when intact, 1 naming the first entry
    that does not verify. Every review action (table review_actions) must also match its entry in the chain."""
    report = _run(lambda app: verify_audit_log(app.store))
    check = report.chain
    if report.intact:
        click.echo(f"audit log intact: {check.verified} entries; head {check.head}")
        if report.reviews_before_chain:
            click.echo(f"{report.reviews_before_chain} review action(s) recorded before the audit log began")
        return
    if not check.intact:
        click.echo(
            f"audit log BROKEN at entry {check.broken_at}: {check.problem} ({check.verified} entries before it verify)",
            err=True,
        )
    for problem in report.unmatched_reviews:
        click.echo(f"review_actions does not match the audit log: {problem}", err=True)
    sys.exit(1)
