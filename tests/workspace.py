"""The review workspace in tests: a SQLite database with one subject's records replayed into it (an AE whose
verbatim text is an XSS payload, liver labs, blood pressure, a dose interruption), the three reviewers, and the
app served in-process (TestClient) or by uvicorn on a free port (browser tests)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.domain.access import Role
from safety_monitor.domain.alerts import alert_id
from safety_monitor.service.accounts import issue_token
from safety_monitor.settings import Settings
from safety_monitor.web.app import create_app
from streams.embedded import replay_file
from tests.accounts import FAST_HASHER, PASSWORD, REVIEWERS, SITE_ACCOUNT, add_reviewers, add_site
from tests.conftest import ROOT, free_port
from tests.factories import STUDY, ae, enrolled_and_dosed, lb, subject_event, subject_id, vs

S1 = subject_id(1)
XSS = "<script>alert('x')</script>"
AETERM = f"Haemoptysis {XSS}"
NOW = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
CLOCK_ALERT = f"sae-reporting-clock|{STUDY}|{S1}|AE:AE-1"
HEMOPTYSIS_ALERT = f"hemoptysis|{STUDY}|{S1}|AE:AE-1"


def trial_messages() -> list[dict[str, object]]:
    return [
        *enrolled_and_dosed(S1),
        subject_event(S1, "FIRST_DOSE", "2026-03-02", drug="ICI"),
        subject_event(S1, "DOSE_INTERRUPTED", "2026-04-30", drug="ANLOTINIB"),
        ae(S1, "AE-1", "Haemoptysis", 3, AETERM=AETERM, AESER="Y", AEREL_ANLOTINIB="PROBABLE", onset="2026-04-29"),
        lb(S1, "ALT", 212, LBDTC="2026-04-20T07:45"),
        lb(S1, "BILI", 50, LBSTRESU="umol/L", LBSTNRLO=3.4, LBSTNRHI=20.5, LBDTC="2026-04-20T07:45"),
        vs(S1, "SYSBP", 172, at="2026-04-25T09:00"),
        vs(S1, "DIABP", 104, at="2026-04-25T09:00"),
    ]


@dataclass
class Workspace:
    settings: Settings
    clock: FixedClock
    tokens: dict[Role, str]

    def app(self) -> App:
        app = bootstrap(self.settings, clock=self.clock)
        app.hasher = FAST_HASHER
        return app

    def web(self) -> FastAPI:
        return create_app(self.app())

    @property
    def alert(self) -> str:
        return alert_id(HEMOPTYSIS_ALERT)

    @property
    def clock_alert(self) -> str:
        return alert_id(CLOCK_ALERT)


def build_workspace(
    tmp_path: Path,
    messages: list[dict[str, object]] | None = None,
    *,
    database_url: str | None = None,
    schema: str | None = None,
) -> Workspace:
    """Replay the messages into a fresh database (SQLite unless given) and add the reviewers, each with a token."""
    settings = Settings(
        database_url=database_url or f"sqlite:///{tmp_path}/workspace.db",
        database_schema=schema,
        rules_dir=ROOT / "rules",
        templates_dir=ROOT / "templates",
        mail_capture_dir=tmp_path / "mail",
        alert_recipients=("medical-monitor@example.org",),
        public_url="https://safety.example.org",
    )
    clock = FixedClock(NOW)
    trial = tmp_path / "trial.jsonl"
    trial.write_text("".join(json.dumps(m) + "\n" for m in (messages or trial_messages())))

    async def seed() -> dict[Role, str]:
        app = bootstrap(settings, clock=clock)
        try:
            await app.start()
            await replay_file(app, trial)
            await app.deliver(ignore_waits=True)
            await add_reviewers(app.store)
            await add_site(app.store)
            accounts = {**REVIEWERS, Role.SITE: SITE_ACCOUNT}
            return {role: await issue_token(app.store, name, at=NOW) for role, name in accounts.items()}
        finally:
            await app.close()

    return Workspace(settings, clock, asyncio.run(seed()))


def login(client: TestClient, role: Role | None) -> TestClient:
    """Log `client` in as the reviewer of `role` through the login form (None: stay anonymous)."""
    if role is None:
        return client
    form = client.get("/login")
    token = csrf_of(form.text)
    answer = client.post(
        "/login", data={"username": REVIEWERS[role], "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/alerts", answer.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token in the page"
    return found.group(1)


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def serve(web: FastAPI) -> Iterator[Served]:
    """Run the workspace with uvicorn on a free port in a thread; stop it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the workspace did not start")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
