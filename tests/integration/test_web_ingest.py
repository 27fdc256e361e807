"""POST /api/v1/messages, the door sites publish through: every answer it gives (200 with the receipt, 400, 401,
403 for another site's data and for a reviewer, 413, 415, 429), what each leaves in the database, and the audit
entry of a refused attempt. In-process (TestClient) on SQLite, the same pipeline as `replay`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from safety_monitor.bootstrap import App
from safety_monitor.domain.access import Role
from safety_monitor.domain.rate_limit import Allowance
from safety_monitor.service.accounts import issue_token, revoke_tokens
from safety_monitor.web import ingest
from safety_monitor.web.app import create_app
from tests.accounts import SITE_ACCOUNT, add_site
from tests.factories import ae, enrolled_and_dosed, lb, subject_id
from tests.workspace import NOW, Workspace, build_workspace

T = TypeVar("T")
S2 = subject_id(2)
OTHER_SITE = subject_id(3, site="034")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return build_workspace(tmp_path)


def client_of(ws: Workspace, allowance: Allowance | None = None) -> Iterator[TestClient]:
    app = ws.app()
    with TestClient(create_app(app, allowance=allowance)) as client:
        yield client


def site(ws: Workspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.tokens[Role.SITE]}"}


def ndjson(*messages: dict[str, Any]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def on_store(ws: Workspace, work: Callable[[App], Awaitable[T]]) -> T:
    """Run `work` on an app of its own over the workspace's database, closed afterwards."""

    async def run() -> T:
        app = ws.app()
        try:
            return await work(app)
        finally:
            await app.close()

    return asyncio.run(run())


def rows(ws: Workspace, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ws.settings.database_url.removeprefix("sqlite:///")) as connection:
        return list(connection.execute(query))


def test_a_batch_is_committed_before_its_receipt_and_a_retry_is_counted_never_applied(workspace: Workspace) -> None:
    batch = [*enrolled_and_dosed(S2), ae(S2, "AE-9", "Pneumonitis", 3, AEIRAE="Y")]
    for client in client_of(workspace):
        answer = client.post("/api/v1/messages", headers=site(workspace), json=batch)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"accepted": 3, "duplicates": 0, "dead_lettered": []}
        request = answer.headers["x-request-id"]
        origins = rows(workspace, "select origin from inbox where origin like 'https:%' order by origin")
        assert [o for (o,) in origins] == [f"https:012:{request}#{n}" for n in (1, 2, 3)]
        again = client.post("/api/v1/messages", headers=site(workspace), json=batch)
        assert again.json() == {"accepted": 0, "duplicates": 3, "dead_lettered": []}
    assert rows(workspace, f"select count(*) from adverse_event where subject_id = '{S2}'") == [(1,)]
    assert rows(workspace, "select count(*) from inbox where origin like 'https:%'") == [(3,)]


def test_ndjson_is_one_message_a_line_and_a_schema_refusal_is_a_stored_dead_letter(workspace: Workspace) -> None:
    good = lb(S2, "ALT", 212, LBDTC="2026-04-20T07:45")
    bad = ae(S2, "AE-10", "Rash", 3) | {"AETOXGR": 7}
    body = ndjson(good, bad) + "not json\n\n"
    headers = site(workspace) | {"Content-Type": "application/x-ndjson"}
    for client in client_of(workspace):
        answer = client.post("/api/v1/messages", headers=headers, content=body)
        assert answer.status_code == 200, answer.text
        receipt = answer.json()
        assert (receipt["accepted"], receipt["duplicates"]) == (1, 0)
        letters = receipt["dead_lettered"]
        assert [d["msg_id"] for d in letters] == [bad["msg_id"], None]
        assert "AETOXGR" in letters[0]["reason"] and "grade 7 is impossible" in letters[0]["reason"]
        assert letters[1]["reason"].startswith("not JSON")
        request = answer.headers["x-request-id"]
    stored = rows(workspace, "select msg_id, origin from dead_letter where origin like 'https:%' order by origin")
    assert stored == [(bad["msg_id"], f"https:012:{request}#2"), (None, f"https:012:{request}#3")]


def test_a_message_of_another_site_refuses_the_whole_request_and_the_attempt_is_audited(workspace: Workspace) -> None:
    mine = ae(S2, "AE-11", "Diarrhoea", 2)
    theirs = ae(OTHER_SITE, "AE-1", "Colitis", 3)
    for client in client_of(workspace):
        answer = client.post("/api/v1/messages", headers=site(workspace), json=[mine, theirs])
        assert answer.status_code == 403
        assert "'034'" in answer.json()["detail"] and "nothing of it was accepted" in answer.json()["detail"]
        # A refused message naming another site counts too: a site can never write another site's dead letters.
        refused = theirs | {"AETOXGR": 9}
        assert client.post("/api/v1/messages", headers=site(workspace), json=[refused]).status_code == 403
    assert rows(workspace, "select count(*) from inbox where origin like 'https:%'") == [(0,)]
    assert rows(workspace, "select count(*) from dead_letter where origin like 'https:%'") == [(0,)]
    audit = rows(workspace, "select actor, event, target, detail from audit_log where event = 'publish-refused'")
    assert [(a, e, t) for a, e, t, _ in audit] == [(SITE_ACCOUNT, "publish-refused", "012")] * 2
    detail = json.loads(audit[0][3])
    assert (detail["foreign_sites"], detail["messages"]) == ("034", "2")
    assert "Colitis" not in audit[0][3]  # no subject data in the trail


def test_without_a_valid_token_401_and_a_reviewers_token_403(workspace: Workspace) -> None:
    batch = [ae(S2, "AE-12", "Fatigue", 1)]
    for client in client_of(workspace):
        assert client.post("/api/v1/messages", json=batch).status_code == 401
        wrong = {"Authorization": "Bearer smt_not-a-token"}
        assert client.post("/api/v1/messages", headers=wrong, json=batch).status_code == 401
        basic = {"Authorization": "Basic ZWRjOnNlY3JldA=="}
        assert client.post("/api/v1/messages", headers=basic, json=batch).headers["www-authenticate"] == "Bearer"
        for role in (Role.MEDICAL_MONITOR, Role.DSMB_MEMBER, Role.ADMIN):
            reviewer = {"Authorization": f"Bearer {workspace.tokens[role]}"}
            assert client.post("/api/v1/messages", headers=reviewer, json=batch).status_code == 403, role
        on_store(workspace, lambda app: revoke_tokens(app.store, SITE_ACCOUNT, at=NOW))
        assert client.post("/api/v1/messages", headers=site(workspace), json=batch).status_code == 401
    assert rows(workspace, "select count(*) from inbox where origin like 'https:%'") == [(0,)]


def test_a_body_over_the_cap_is_413_and_other_bodies_are_400_or_415(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "MAX_BODY_BYTES", 4096)
    monkeypatch.setattr(ingest, "MAX_MESSAGES", 2)
    for client in client_of(workspace):
        post = client.post
        big = [ae(S2, f"AE-{n}", "Fatigue", 1, AETERM="x" * 300) for n in range(20)]
        assert post("/api/v1/messages", headers=site(workspace), json=big).status_code == 413
        chunked = iter([ndjson(m).encode() for m in big])  # no Content-Length: the cap counts what is read
        headers = site(workspace) | {"Content-Type": "application/x-ndjson"}
        assert post("/api/v1/messages", headers=headers, content=chunked).status_code == 413
        three = [ae(S2, f"AE-{n}", "Fatigue", 1) for n in range(3)]
        too_many = post("/api/v1/messages", headers=site(workspace), json=three)
        assert (too_many.status_code, too_many.json()["detail"]) == (413, "3 messages in one request: at most 2")
        assert post("/api/v1/messages", headers=site(workspace), json=three[0]).status_code == 400  # not an array
        json_headers = site(workspace) | {"Content-Type": "application/json"}
        assert post("/api/v1/messages", headers=json_headers, content=b"[{").status_code == 400
        assert post("/api/v1/messages", headers=json_headers, content=b"[" * 1500 + b"]" * 1500).status_code == 400
        assert post("/api/v1/messages", headers=json_headers, content=b"\xff\xfe").status_code == 400
        text = site(workspace) | {"Content-Type": "text/plain"}
        assert post("/api/v1/messages", headers=text, content=ndjson(three[0])).status_code == 415
    assert rows(workspace, "select count(*) from inbox where origin like 'https:%'") == [(0,)]


def test_a_site_over_its_rate_limit_gets_429_with_retry_after_and_does_not_starve_another(
    workspace: Workspace,
) -> None:
    on_store(workspace, lambda app: add_site(app.store, "lab.site-034", "034"))
    token = on_store(workspace, lambda app: issue_token(app.store, "lab.site-034", at=NOW))
    other = {"Authorization": f"Bearer {token}"}
    for client in client_of(workspace, Allowance(per_second=2, burst=4)):
        first = [ae(S2, f"AE-{n}", "Fatigue", 1) for n in range(4)]
        assert client.post("/api/v1/messages", headers=site(workspace), json=first).json()["accepted"] == 4
        over = client.post("/api/v1/messages", headers=site(workspace), json=first[:3])
        assert over.status_code == 429
        assert over.headers["retry-after"] == "2"  # 3 messages at 2 a second
        assert client.post("/api/v1/messages", headers=other, json=[ae(OTHER_SITE)]).status_code == 200
        workspace.clock.set(NOW + timedelta(seconds=2))
        retried = client.post("/api/v1/messages", headers=site(workspace), json=first[:3])
        assert retried.json() == {"accepted": 0, "duplicates": 3, "dead_lettered": []}
