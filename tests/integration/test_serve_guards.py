"""`serve` guards its site: one process per inbox and database (an flock naming the holder's pid), a dead
holder's leases released at once, and every file it creates private to its user (issue 10, items 8 and 9)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import ae, subject_id
from tests.integration.test_serve import COMMAND, Serve, drop, mail_to, site, wait_until

__all__ = ["site"]  # the fixture, shared with test_serve


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The umask most systems start with (022): without its own, the service would create files 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_second_serve_on_the_same_inbox_and_database_is_refused_naming_the_holder(
    site: tuple[Path, dict[str, str]],
) -> None:
    workdir, env = site
    first = Serve(env, workdir, 1)
    try:
        again = subprocess.run(  # another pid file: the pid-file check alone let this one in
            [COMMAND, "serve", "--pid-file", str(workdir / "other.pid")],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1, again.stdout + again.stderr
        assert f"pid {first.process.pid}" in again.stderr and ".serve.lock" in again.stderr, again.stderr
    finally:
        assert first.stop() == 0


def test_files_and_directories_serve_creates_are_private(
    site: tuple[Path, dict[str, str]], permissive_umask: None
) -> None:
    workdir, env = site
    first = Serve(env, workdir, 1)
    try:
        drop(workdir / "inbox", "site-a.jsonl", [json.dumps(ae(subject_id(1), "AE-1", "Haemoptysis", 3))])
        wait_until(lambda: len(mail_to(workdir / "mail")) == 1, "the alert is mailed")
        assert mode(workdir / "serve.pid") == 0o600
    finally:
        assert first.stop() == 0
    assert mode(workdir / "site.db") == 0o600
    assert mode(workdir / "mail") == 0o700
    assert {mode(p) for p in (workdir / "mail").glob("*.eml")} == {0o600}
    assert mode(workdir / "inbox" / "processed") == 0o700
    assert mode(workdir / "inbox" / "processed" / "site-a.jsonl") == 0o600


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_leases_of_a_dead_serve_are_released_at_start(site: tuple[Path, dict[str, str]]) -> None:
    workdir, env = site
    upgraded = subprocess.run([COMMAND, "db", "upgrade"], cwd=workdir, env=env, capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stderr
    dead = f"{socket.gethostname()}:{_dead_pid()}:serve"
    db = sqlite3.connect(workdir / "site.db")
    try:  # a serve killed while it held the delivery job: its lease would block delivery for an hour
        db.execute(
            "INSERT INTO job_lease (job, slot, holder, held_until, done_at) VALUES (?, ?, ?, ?, NULL)",
            ("outbox-delivery", int(time.time()) // 1000, dead, "2999-01-01 00:00:00.000000"),
        )
        db.commit()
    finally:
        db.close()
    first = Serve(env, workdir, 1)
    try:
        drop(workdir / "inbox", "site-a.jsonl", [json.dumps(ae(subject_id(1), "AE-1", "Haemoptysis", 3))])
        wait_until(lambda: len(mail_to(workdir / "mail")) == 1, "the alert is mailed at once", 30)
        assert f"released the leases of {dead}" in first.stderr()
    finally:
        assert first.stop() == 0
