"""Reviewing in the workspace, by page and by API: the logged-in user is the reviewer, each action lands in the
review history and in the audit log's hash chain, DSMB members are refused, and every site-supplied or
user-supplied string is shown as text, never run."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_monitor.domain.access import Role
from safety_monitor.domain.alerts import alert_id
from safety_monitor.service.audit import verify_audit_log
from tests.accounts import REVIEWERS
from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_schema
from tests.factories import STUDY, ae, enrolled_and_dosed
from tests.workspace import AETERM, S1, XSS, Workspace, build_workspace, csrf_of, login


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return build_workspace(tmp_path)


@pytest.fixture
def client(workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(workspace.web()) as found:
        yield found


def bearer(ws: Workspace, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.tokens[role]}"}


def audit_count(ws: Workspace) -> int:
    async def count() -> int:
        app = ws.app()
        try:
            report = await verify_audit_log(app.store)
        finally:
            await app.close()
        assert report.intact
        return report.chain.verified

    return asyncio.run(count())


def test_a_monitor_acknowledges_on_the_page_and_sees_it_in_the_history(workspace: Workspace, client) -> None:
    login(client, Role.MEDICAL_MONITOR)
    before = audit_count(workspace)
    page = client.get(f"/alerts/{workspace.alert}")
    assert 'id="review-status">new<' in page.text and 'id="form-acknowledge"' in page.text
    # Every routed notification of the alert, with its route and group, and whether it was mailed or held.
    assert "<td>medical-monitors</td><td>route.routes[3]</td>" in page.text and "<td>mailed</td>" in page.text
    assert "Hemoptysis / bronchopulmonary haemorrhage (any grade)" in page.text and "Anlotinib" in page.text
    done = client.post(
        f"/alerts/{workspace.alert}/acknowledge",
        data={"csrf_token": csrf_of(page.text), "reason": "taken on: bronchoscopy booked"},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, f"/alerts/{workspace.alert}#history")
    shown = client.get(f"/alerts/{workspace.alert}").text
    assert 'id="review-status">acknowledged<' in shown
    assert (
        "dr.li (medical-monitor) review status: new -&gt; acknowledged; reason: taken on: bronchoscopy booked" in shown
    )
    assert audit_count(workspace) == before + 1
    twice = client.post(
        f"/alerts/{workspace.alert}/acknowledge", data={"csrf_token": csrf_of(shown), "reason": "again"}
    )
    assert twice.status_code == 409 and "already acknowledged" in twice.text
    assert audit_count(workspace) == before + 1  # a refusal writes nothing


def test_a_dsmb_member_reads_everything_and_sees_no_action_forms(workspace: Workspace, client) -> None:
    login(client, Role.DSMB_MEMBER)
    page = client.get(f"/alerts/{workspace.alert}")
    assert page.status_code == 200 and 'id="actions"' not in page.text
    refused = client.post(
        f"/alerts/{workspace.alert}/acknowledge", data={"csrf_token": csrf_of(page.text), "reason": "x"}
    )
    assert refused.status_code == 403


def test_the_api_reviews_with_the_rights_of_the_pages(workspace: Workspace, client) -> None:
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer smt_nope"}).status_code == 401
    listed = client.get("/api/v1/alerts", headers=bearer(workspace, Role.DSMB_MEMBER)).json()
    assert listed["total"] == len(listed["alerts"]) >= 3
    first = listed["alerts"][0]
    assert {"id", "rule_id", "subject_id", "status", "grade", "severity", "raised_at"} <= set(first)
    assert first["severity"] == "critical"  # severity first

    path = f"/api/v1/alerts/{workspace.alert}"
    dsmb = client.post(f"{path}/acknowledge", json={"reason": "seen"}, headers=bearer(workspace, Role.DSMB_MEMBER))
    assert dsmb.status_code == 403
    assert client.post(f"{path}/acknowledge", json={"reason": "seen"}).status_code == 401
    done = client.post(f"{path}/acknowledge", json={"reason": "seen"}, headers=bearer(workspace, Role.MEDICAL_MONITOR))
    assert done.status_code == 200
    assert done.json()["review_status"] == "acknowledged"
    assert done.json()["history"][-1] | {"at": None} == {
        "at": None, "reviewer": "dr.li", "role": "medical-monitor", "kind": "acknowledge", "old": "new",
        "new": "acknowledged", "drug": None, "duplicate_of": None, "reason": "seen", "clock_effect": None,
    }  # fmt: skip
    causality = client.post(
        f"{path}/causality",
        json={"reason": "on treatment", "outcome": "related", "drug": "anlotinib"},
        headers=bearer(workspace, Role.MEDICAL_MONITOR),
    )
    assert causality.json()["causality"] == {"anlotinib": "related"}
    wrong = client.post(
        f"{path}/adjudicate", json={"reason": "x", "outcome": "maybe"}, headers=bearer(workspace, Role.MEDICAL_MONITOR)
    )
    assert wrong.status_code == 409 and "'maybe' is not a valid adjudication" in wrong.json()["detail"]
    unknown = client.post(
        "/api/v1/alerts/0000000000000000/comment", json={"reason": "x"}, headers=bearer(workspace, Role.ADMIN)
    )
    assert unknown.status_code == 404
    admin = client.post(f"{path}/comment", json={"reason": "filed"}, headers=bearer(workspace, Role.ADMIN))
    assert admin.status_code == 200 and admin.json()["history"][-1]["reviewer"] == REVIEWERS[Role.ADMIN]
    expedite = client.post(
        f"/api/v1/alerts/{workspace.clock_alert}/expectedness",
        json={"reason": "listed in IB 5.4", "outcome": "expected"},
        headers=bearer(workspace, Role.MEDICAL_MONITOR),
    )
    assert expedite.json()["history"][-1]["clock_effect"] == "closed"
    assert (
        client.get("/api/v1/alerts?review_status=acknowledged", headers=bearer(workspace, Role.ADMIN)).json()["total"]
        == 1
    )
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/alerts/{alert_id}/acknowledge" in spec["paths"] and "/alerts" not in spec["paths"]


def test_a_revoked_token_or_a_disabled_user_is_refused(workspace: Workspace, client) -> None:
    from safety_monitor.service.accounts import disable_user, revoke_tokens
    from tests.workspace import NOW

    headers = bearer(workspace, Role.MEDICAL_MONITOR)
    assert client.get("/api/v1/alerts", headers=headers).status_code == 200

    async def revoke() -> None:
        app = workspace.app()
        try:
            await revoke_tokens(app.store, REVIEWERS[Role.MEDICAL_MONITOR], at=NOW)
            await disable_user(app.store, REVIEWERS[Role.DSMB_MEMBER], at=NOW)
        finally:
            await app.close()

    login(client, Role.DSMB_MEMBER)
    asyncio.run(revoke())
    assert client.get("/api/v1/alerts", headers=headers).status_code == 401
    assert client.get("/api/v1/alerts", headers=bearer(workspace, Role.DSMB_MEMBER)).status_code == 401
    assert client.get("/alerts", follow_redirects=False).headers["location"] == "/login"


def test_queue_filters_and_new_since_my_last_review(workspace: Workspace, client) -> None:
    login(client, Role.MEDICAL_MONITOR)
    headers = bearer(workspace, Role.MEDICAL_MONITOR)
    everything = client.get("/api/v1/alerts", headers=headers).json()["total"]
    assert client.get("/api/v1/alerts?site_id=012", headers=headers).json()["total"] == everything
    assert client.get("/api/v1/alerts?site_id=999", headers=headers).json()["total"] == 0
    assert client.get("/api/v1/alerts?rule_id=hemoptysis", headers=headers).json()["total"] == 1
    assert client.get("/api/v1/alerts?drug=anlotinib", headers=headers).json()["total"] >= 1
    assert client.get("/api/v1/alerts?drug=ici&rule_id=hemoptysis", headers=headers).json()["total"] == 0
    assert client.get("/api/v1/alerts?new_since_my_last_review=true", headers=headers).json()["total"] == everything
    client.post(f"/api/v1/alerts/{workspace.alert}/comment", json={"reason": "seen all"}, headers=headers)
    assert client.get("/api/v1/alerts?new_since_my_last_review=true", headers=headers).json()["total"] == 0
    page = client.get("/alerts?mine=true").text
    assert "Changed since your last review" in page and "No open alerts match." in page
    assert 'id="clocks-due"' not in page  # the SAE clock of the case is 15 days out, not due soon
    first = client.get("/alerts?severity=critical&limit=1").text
    assert (
        first.count('class="alert-link"') == 1 and 'href="/alerts?severity=critical&amp;limit=1&amp;offset=1"' in first
    )
    assert client.get("/alerts?severity=critical&limit=1&offset=1").text.count('class="alert-link"') == 1
    partial = client.get("/alerts?severity=critical", headers={"HX-Request": "true"}).text
    assert partial.lstrip().startswith("<p") and "<html" not in partial


FREE_TEXT_FIELDS = ["AETERM", "AEDECOD", "AEBODSYS", "AEOUT", "AEREL_ICI", "AEACN_ICI", "AESTDTC"]


@pytest.mark.parametrize("field", FREE_TEXT_FIELDS)
def test_xss_in_a_site_field_shows_as_text(tmp_path: Path, field: str) -> None:
    payload = f'"><img src=x onerror=alert(1)>{XSS}'
    messages = [*enrolled_and_dosed(S1), ae(S1, "AE-1", "Haemoptysis", 3, AESER="Y", **{field: payload})]
    ws = build_workspace(tmp_path, messages)
    with TestClient(ws.web()) as client:
        login(client, Role.MEDICAL_MONITOR)
        for path in (f"/alerts/{ws.alert}", f"/subjects/{S1}", "/alerts", "/incidence", "/sae-clock"):
            text = client.get(path).text
            assert "<img src=x" not in text and XSS not in text, (field, path)


def test_the_aeterm_payload_of_the_issue_shows_as_text_on_the_alert_page_and_the_timeline(workspace, client) -> None:
    login(client, Role.DSMB_MEMBER)
    for path in (f"/alerts/{workspace.alert}", f"/subjects/{S1}"):
        text = client.get(path).text
        assert html.escape(AETERM, quote=True).replace("&#x27;", "&#39;") in text
        assert XSS not in text


def test_xss_in_user_supplied_strings_shows_as_text(workspace: Workspace, client) -> None:
    login(client, Role.MEDICAL_MONITOR)
    page = client.get(f"/alerts/{workspace.alert}")
    client.post(f"/alerts/{workspace.alert}/comment", data={"csrf_token": csrf_of(page.text), "reason": XSS})
    assert XSS not in client.get(f"/alerts/{workspace.alert}").text
    for query in (f"subject={XSS}", f"rule={XSS}", f"site=%22%3E{XSS}"):
        assert XSS not in client.get(f"/alerts?{query}").text
    assert XSS not in client.get(f"/subjects/{XSS}").text
    assert XSS not in client.get(f"/alerts/{XSS}").text
    with TestClient(workspace.web()) as anonymous:
        token = csrf_of(anonymous.get("/login").text)
        anonymous.post("/login", data={"username": XSS, "password": "x", "csrf_token": token})
        assert XSS not in anonymous.get("/login?failed=1").text


def test_the_timeline_and_edish_are_svg_drawn_on_the_server(workspace: Workspace, client) -> None:
    login(client, Role.DSMB_MEMBER)
    timeline = client.get(f"/subjects/{S1}").text
    assert timeline.count("<svg") == 1
    assert "anlotinib dosing" in timeline.lower() and "interrupted 2026-04-30" in timeline
    assert "liver labs (x ULN)" in timeline and "blood pressure (mmHg)" in timeline
    assert f'href="/alerts/{workspace.alert}"' in timeline
    edish = client.get("/edish").text
    assert 'class="hy-alt"' in edish and 'class="hy-bili"' in edish
    assert f'href="/subjects/{S1}"' in edish
    assert "5.30" in edish and "2.44" in edish  # ALT 212/40, bilirubin 50/20.5 (x ULN)
    clocks = client.get("/sae-clock").text
    assert "2026-05-01 00:00" in clocks and "2026-05-16" in clocks and ">open<" in clocks


def test_alert_emails_link_to_the_alert_page(workspace: Workspace) -> None:
    mails = list((workspace.settings.mail_capture_dir).glob("*.eml"))
    assert mails
    text = "\n".join(m.read_text() for m in mails)
    assert f"https://safety.example.org/alerts/{workspace.alert}" in text  # PUBLIC_URL of the workspace fixture


def test_the_alert_page_shows_a_notification_held_by_an_inhibit_rule_and_why(tmp_path: Path) -> None:
    fatal = ae(S1, "AE-1", "Haemoptysis", 5, AESER="Y", AESDTH="Y", onset="2026-04-29")
    minor = ae(S1, "AE-2", "Proteinuria", 2, soc="Renal and urinary disorders", onset="2026-04-20")
    ws = build_workspace(tmp_path, [*enrolled_and_dosed(S1), fatal, minor])
    with TestClient(ws.web()) as client:
        login(client, Role.DSMB_MEMBER)
        page = client.get(f"/alerts/{alert_id(f'proteinuria-ae-grade-2|{STUDY}|{S1}|AE:AE-2')}").text
    assert "death-holds-minor-alerts-of-the-subject" in page


@pytest.mark.postgres
def test_the_pages_and_the_api_on_postgresql(tmp_path: Path) -> None:
    schema = asyncio.run(_postgres_schema())
    try:
        ws = build_workspace(tmp_path, database_url=POSTGRES_URL, schema=schema)
        with TestClient(ws.web()) as client:
            login(client, Role.MEDICAL_MONITOR)
            for path in (f"/alerts/{ws.alert}", f"/subjects/{S1}", "/edish", "/sae-clock", "/incidence",
                         "/alerts?mine=true&drug=anlotinib&status=new&site=012&severity=critical"):  # fmt: skip
                assert client.get(path).status_code == 200, path
            headers = bearer(ws, Role.MEDICAL_MONITOR)
            listed = client.get("/api/v1/alerts?drug=anlotinib&review_status=new", headers=headers).json()
            assert listed["total"] >= 1
            done = client.post(f"/api/v1/alerts/{ws.alert}/acknowledge", json={"reason": "seen"}, headers=headers)
            assert done.json()["review_status"] == "acknowledged"
            assert client.get("/api/v1/alerts?review_status=acknowledged", headers=headers).json()["total"] == 1
            assert "5.30" in client.get("/edish").text
            assert client.get("/healthz").json()["database"] == "reachable"
        accounts = len(ws.tokens)  # one account and one token per role, the site account included
        assert audit_count(ws) == accounts + accounts + 1 + 1  # accounts, tokens, the login, the acknowledgement
    finally:
        asyncio.run(_drop_schema(schema))
