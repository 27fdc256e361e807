"""A site retrying after the server died under it: the real `safety-monitor web` in a process of its own, killed
(SIGKILL) after it committed a batch but before the site read the receipt, and killed while a batch is in flight;
after a restart the site sends the same request again: nothing is lost and nothing is applied twice."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.factories import ae, enrolled_and_dosed, lb, subject_id, vs

BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery"


@dataclass
class Site:
    env: dict[str, str]
    workdir: Path
    token: str

    @property
    def db(self) -> Path:
        return self.workdir / "var" / "safety-monitor.db"

    def doubled_alert_changes(self) -> int:
        """Alert changes recorded twice (the same alert, kind and grade): a retry applied twice would make them."""
        return self.count(
            "select count(*) from (select alert_key, kind, grade from alert_change group by 1, 2, 3 having count(*) > 1)"
        )

    def count(self, query: str) -> int:
        with sqlite3.connect(self.db) as connection:
            return int(connection.execute(query).fetchone()[0])


def _cli(site_env: dict[str, str], workdir: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "safety-monitor"), *args],
        cwd=workdir,
        env=site_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def site(tmp_path: Path) -> Site:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SAFETY_MONITOR_", "MAIL_"))}
    env |= {
        "SAFETY_MONITOR_RULES_DIR": str(ROOT / "rules"),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
        "MAIL_CAPTURE_DIR": str(tmp_path / "mail"),
    }
    _cli(env, tmp_path, "db", "upgrade")  # `users` changes an existing database; it creates none
    _cli(env, tmp_path, "users", "add", "edc.site-012", "--role", "site", "--site-id", "012", "--password-stdin",
         stdin=PASSWORD + "\n")  # fmt: skip
    token = _cli(env, tmp_path, "users", "token", "edc.site-012").strip().splitlines()[-1]
    return Site(env, tmp_path, token)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int


def start(site: Site) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "safety-monitor"), "web", "--port", str(port)],
        cwd=site.workdir,
        env=site.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return Server(process, port)
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("safety-monitor web did not start")
        time.sleep(0.2)


def kill(server: Server) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            kill(server)


def batch(first: int, subjects: int) -> bytes:
    """NDJSON for `subjects` subjects of site 012: enrolment, dosing, an AE, labs and a blood pressure each (new
    msg_ids at each call: a retry sends the same bytes again)."""
    messages = []
    for n in range(first, first + subjects):
        s = subject_id(n)
        messages += [*enrolled_and_dosed(s), ae(s, f"AE-{n}", "Pneumonitis", 3, AEIRAE="Y")]
        messages += [lb(s, "ALT", 212, LBDTC="2026-04-20T07:45"), vs(s, "SYSBP", 172, at="2026-04-25T09:00")]
    return "".join(json.dumps(m) + "\n" for m in messages).encode()


def send(server: Server, site: Site, body: bytes) -> http.client.HTTPConnection:
    """Send the whole request and return without reading the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request(
        "POST",
        "/api/v1/messages",
        body=body,
        headers={"Authorization": f"Bearer {site.token}", "Content-Type": "application/x-ndjson"},
    )
    return connection


def post(server: Server, site: Site, body: bytes) -> dict[str, object]:
    connection = send(server, site, body)
    answer = connection.getresponse()
    assert answer.status == 200
    receipt: dict[str, object] = json.loads(answer.read())
    connection.close()
    return receipt


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_retry_after_the_server_died_before_the_receipt_is_read_loses_nothing_and_doubles_nothing(
    site: Site, servers: list[Server]
) -> None:
    body = batch(1, 40)  # 200 messages
    servers.append(server := start(site))
    connection = send(server, site, body)
    wait_for(lambda: site.count("select count(*) from inbox") == 200)  # committed ...
    kill(server)  # ... and the server dies before the site has read a byte of the answer
    connection.close()
    # After the commit and before the answer the server checks the reporting clocks; killed in that check, it
    # leaves the overdue escalations to the next batch (the retry), which is not a double: compare the other changes.
    rule_changes = "select count(*) from alert_change where alert_key not like 'sae-reporting-clock|%'"
    alerts, changes = site.count("select count(*) from alert"), site.count(rule_changes)
    assert alerts > 0

    servers.append(server := start(site))
    assert post(server, site, body) == {"accepted": 0, "duplicates": 200, "dead_lettered": []}
    assert site.count("select count(*) from inbox") == 200
    assert site.count("select count(*) from adverse_event") == 40
    assert site.count("select count(*) from alert") == alerts
    assert site.count(rule_changes) == changes
    assert site.doubled_alert_changes() == 0


def test_a_retry_after_the_server_died_mid_request_loses_nothing_and_doubles_nothing(
    site: Site, servers: list[Server]
) -> None:
    servers.append(server := start(site))
    earlier = batch(1, 10)
    before = post(server, site, earlier)  # an earlier batch, answered: it must survive untouched
    assert before == {"accepted": 50, "duplicates": 0, "dead_lettered": []}

    body = batch(11, 200)  # 1,000 messages
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = (
        f"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {site.token}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    raw.sendall(head + body[: len(body) // 2])  # half the body is sent when the server dies
    time.sleep(0.3)
    kill(server)
    raw.close()
    assert site.count("select count(*) from inbox") == 50

    servers.append(server := start(site))
    connection = send(server, site, body)  # the whole request this time; the server dies while it works on it
    time.sleep(0.5)
    kill(server)
    connection.close()
    committed = site.count("select count(*) from inbox")
    assert committed in (50, 1050)  # all of the batch or none of it: one transaction

    servers.append(server := start(site))
    retry = post(server, site, body)
    assert (retry["accepted"], retry["duplicates"]) == ((1000, 0) if committed == 50 else (0, 1000))
    assert post(server, site, earlier) == {"accepted": 0, "duplicates": 50, "dead_lettered": []}
    assert site.count("select count(*) from inbox") == 1050
    assert site.count("select count(*) from adverse_event") == 210
    assert site.count("select count(*) from alert") > 0
    assert site.doubled_alert_changes() == 0
