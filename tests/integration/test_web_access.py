"""Who may do what in the review workspace: every route of the app, for anonymous and each role, against the
domain's policy table (a route without an `Allowed` entry fails here); logins, CSRF, sessions and lockout."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount

from safety_monitor.domain.access import Action, Role, may
from safety_monitor.domain.users import FAILURES_BEFORE_LOCKOUT, SESSION_ABSOLUTE, SESSION_IDLE
from safety_monitor.web.access import Allowed
from safety_monitor.web.app import CONTENT_SECURITY_POLICY
from tests.accounts import PASSWORD, REVIEWERS, SITE_ACCOUNT
from tests.workspace import NOW, S1, Workspace, build_workspace, csrf_of, login

ROLES: list[Role | None] = [None, Role.MEDICAL_MONITOR, Role.DSMB_MEMBER, Role.ADMIN, Role.SITE]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return build_workspace(tmp_path)


def client_of(ws: Workspace, base_url: str = "http://testserver") -> Iterator[TestClient]:
    with TestClient(ws.web(), base_url=base_url) as client:
        yield client


def routes_of(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of the app, into included routers (FastAPI keeps an included router as one entry)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from routes_of(inner.routes)
        else:
            yield route


def action_of(route: APIRoute) -> tuple[bool, Action | None]:
    """(declared, action) of the route's `Allowed` dependency."""
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Allowed)]
    return (True, found[0].action) if len(found) == 1 else (False, None)


def test_every_route_declares_exactly_one_policy_entry(seeded: Workspace) -> None:
    web = seeded.web()
    missing = []
    for route in routes_of(web.routes):
        if isinstance(route, Mount) and route.path == "/static":
            continue  # the stylesheet and the vendored htmx: public files
        if not isinstance(route, APIRoute) or not action_of(route)[0]:
            missing.append(getattr(route, "path", repr(route)))
    assert missing == []
    public = sorted(r.path for r in routes_of(web.routes) if isinstance(r, APIRoute) and action_of(r) == (True, None))
    assert public == ["/api/v1/openapi.json", "/healthz", "/login", "/login"]


def _path(route: APIRoute, ws: Workspace) -> str:
    # {name}: an account that does not exist, so the matrix disables nobody (an allowed role gets 404)
    return route.path.replace("{alert_id}", ws.alert).replace("{usubjid}", S1).replace("{name}", "nobody")


def _request(client: TestClient, ws: Workspace, route: APIRoute, method: str, role: Role | None, csrf: str) -> int:
    path = _path(route, ws)
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {ws.tokens[role]}"} if role else {}
        body = {"reason": "route matrix", "outcome": "confirmed-signal"}
        answer = client.request(method, path, headers=headers, json=body if method == "POST" else None)
    else:
        form = {"csrf_token": csrf, "reason": "route matrix", "outcome": "confirmed-signal"}
        answer = client.request(method, path, data=form if method == "POST" else None, follow_redirects=False)
        if role is None and answer.status_code == 303:
            assert answer.headers["location"] == "/login" or path == "/login", path
    return answer.status_code


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value if r else "anonymous")
def test_the_route_matrix_follows_the_policy_table(seeded: Workspace, role: Role | None) -> None:
    web = seeded.web()
    with TestClient(web) as client:
        # A site account has no page, so no session: it may not log in (test_a_site_account_cannot_log_in); it
        # meets every page as anonymous and every API route with its token.
        has_pages = role is not None and may(role, Action.READ)
        login(client, role if has_pages else None)
        page = client.get("/alerts") if has_pages else None
        csrf = csrf_of(page.text) if page is not None else ""
        checked = 0
        for route in routes_of(web.routes):
            if not isinstance(route, APIRoute):
                continue
            declared, action = action_of(route)
            assert declared, f"{route.path} has no Allowed(...) entry"
            for method in sorted(route.methods):
                if route.path in ("/logout", "/login") and method == "POST":
                    continue  # they end or start this client's session: covered below
                status = _request(client, seeded, route, method, role, csrf)
                where = f"{method} {route.path} as {role}"
                if action is None:
                    assert status not in (401, 403), where
                elif role is None or (not has_pages and not route.path.startswith("/api/")):
                    assert status == (401 if route.path.startswith("/api/") else 303), where
                elif not may(role, action):
                    assert status == 403, where
                else:
                    assert status not in (401, 403), where
                checked += 1
        assert checked >= 20


def test_a_site_account_cannot_log_in_and_its_token_opens_only_the_publish_route(workspace: Workspace) -> None:
    for client in client_of(workspace):
        token = csrf_of(client.get("/login").text)
        form = {"username": SITE_ACCOUNT, "password": PASSWORD, "csrf_token": token}
        refused = client.post("/login", data=form, follow_redirects=False)
        assert (refused.status_code, refused.headers["location"]) == (303, "/login?failed=1")
        bearer = {"Authorization": f"Bearer {workspace.tokens[Role.SITE]}"}
        assert client.get("/api/v1/alerts", headers=bearer).status_code == 403
        assert client.post("/api/v1/messages", headers=bearer, json=[]).json() == {
            "accepted": 0,
            "duplicates": 0,
            "dead_lettered": [],
        }
    assert _audit_events(workspace)[-1] == "login-refused"


def test_login_needs_the_forms_csrf_token_and_sets_a_strict_session_cookie(workspace: Workspace) -> None:
    for client in client_of(workspace):
        token = csrf_of(client.get("/login").text)
        name = REVIEWERS[Role.MEDICAL_MONITOR]
        refused = client.post("/login", data={"username": name, "password": PASSWORD}, follow_redirects=False)
        assert refused.status_code == 403
        forged = {"username": name, "password": PASSWORD, "csrf_token": "forged"}
        assert client.post("/login", data=forged, follow_redirects=False).status_code == 403
        wrong = {"username": name, "password": "not the password", "csrf_token": token}
        failed = client.post("/login", data=wrong, follow_redirects=False)
        assert (failed.status_code, failed.headers["location"]) == (303, "/login?failed=1")
        assert "sm_session" not in failed.headers.get("set-cookie", "")
        good = client.post("/login", data=wrong | {"password": PASSWORD}, follow_redirects=False)
        assert (good.status_code, good.headers["location"]) == (303, "/alerts")
        cookie = next(c for c in good.headers.get_list("set-cookie") if c.startswith("sm_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        assert client.get("/alerts").status_code == 200


def test_the_session_cookie_is_secure_over_tls(workspace: Workspace) -> None:
    for client in client_of(workspace, base_url="https://testserver"):
        token = csrf_of(client.get("/login").text)
        form = {"username": REVIEWERS[Role.DSMB_MEMBER], "password": PASSWORD, "csrf_token": token}
        good = client.post("/login", data=form, follow_redirects=False)
        cookie = next(c for c in good.headers.get_list("set-cookie") if c.startswith("sm_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_ten_failures_in_a_row_lock_the_account_and_the_right_password_is_refused(workspace: Workspace) -> None:
    for client in client_of(workspace):
        token = csrf_of(client.get("/login").text)
        name = REVIEWERS[Role.MEDICAL_MONITOR]
        for _ in range(FAILURES_BEFORE_LOCKOUT):
            client.post("/login", data={"username": name, "password": "wrong guess", "csrf_token": token})
        right = client.post(
            "/login", data={"username": name, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
        )
        assert right.headers["location"] == "/login?failed=1"
        workspace.clock.set(NOW + timedelta(minutes=16))  # the lockout lasts 15 minutes
        again = client.post(
            "/login", data={"username": name, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
        )
        assert again.headers["location"] == "/alerts"
    events = _audit_events(workspace)
    assert events.count("login-failed") == FAILURES_BEFORE_LOCKOUT - 1
    assert events[-3:] == ["lockout", "login-refused", "login"]


def test_sessions_end_when_idle_and_after_their_absolute_lifetime(workspace: Workspace) -> None:
    for client in client_of(workspace):
        login(client, Role.DSMB_MEMBER)
        workspace.clock.set(NOW + SESSION_IDLE - timedelta(minutes=1))
        assert client.get("/alerts", follow_redirects=False).status_code == 200
        workspace.clock.set(NOW + SESSION_IDLE * 2 - timedelta(minutes=2))  # idle for 29 min since the last use
        assert client.get("/alerts", follow_redirects=False).status_code == 200
        workspace.clock.set(NOW + SESSION_IDLE * 3 + timedelta(minutes=1))  # idle over 30 min
        assert client.get("/alerts", follow_redirects=False).headers["location"] == "/login"

        workspace.clock.set(NOW)
        login(client, Role.DSMB_MEMBER)
        at = NOW
        while at < NOW + SESSION_ABSOLUTE - timedelta(minutes=20):
            at += timedelta(minutes=20)
            workspace.clock.set(at)
            assert client.get("/alerts", follow_redirects=False).status_code == 200
        workspace.clock.set(NOW + SESSION_ABSOLUTE)
        assert client.get("/alerts", follow_redirects=False).headers["location"] == "/login"


def test_logout_ends_the_session_and_is_audited(workspace: Workspace) -> None:
    for client in client_of(workspace):
        login(client, Role.MEDICAL_MONITOR)
        csrf = csrf_of(client.get("/alerts").text)
        assert client.post("/logout", data={}, follow_redirects=False).status_code == 403  # no CSRF token
        out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        client.cookies.clear()
        assert client.get("/alerts", follow_redirects=False).headers["location"] == "/login"
    assert _audit_events(workspace)[-2:] == ["login", "logout"]


def test_a_page_form_without_the_sessions_csrf_token_is_refused(workspace: Workspace) -> None:
    for client in client_of(workspace):
        login(client, Role.MEDICAL_MONITOR)
        forged = client.post(f"/alerts/{workspace.alert}/acknowledge", data={"reason": "x"}, follow_redirects=False)
        assert forged.status_code == 403
        assert 'review-status">new<' in client.get(f"/alerts/{workspace.alert}").text


def test_every_page_sends_a_csp_without_unsafe_inline_and_no_inline_script(seeded: Workspace) -> None:
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    for client in client_of(seeded):
        login(client, Role.MEDICAL_MONITOR)
        for path in ("/login", "/alerts", f"/alerts/{seeded.alert}", f"/subjects/{S1}", "/edish", "/sae-clock",
                     "/incidence", "/logout", "/healthz", "/api/v1/openapi.json"):  # fmt: skip
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert "<script>" not in answer.text and " style=" not in answer.text, path
        assert client.get("/static/htmx.min.js").status_code == 200


def test_healthz_answers_without_login_and_reports_the_database(seeded: Workspace) -> None:
    for client in client_of(seeded):
        answer = client.get("/healthz")
        assert (answer.status_code, answer.json()) == (200, {"status": "ok", "database": "reachable"})


def _audit_events(ws: Workspace) -> list[str]:
    import sqlite3

    url = ws.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(url) as connection:
        return [row[0] for row in connection.execute("select event from audit_log order by seq")]


def test_an_admin_disables_an_account_from_the_users_page(workspace: Workspace) -> None:
    web = workspace.web()
    with TestClient(web) as dsmb, TestClient(web) as admin:
        login(dsmb, Role.DSMB_MEMBER)
        assert dsmb.get("/admin/users").status_code == 403
        login(admin, Role.ADMIN)
        page = admin.get("/admin/users")
        assert page.status_code == 200 and "prof.chen" in page.text and 'href="/admin/users"' in page.text
        assert f"<td>{SITE_ACCOUNT}</td><td>site (site 012)</td>" in page.text
        done = admin.post("/admin/users/prof.chen/disable", data={"csrf_token": csrf_of(page.text)})
        assert "prof.chen disabled" in done.text
        assert dsmb.get("/alerts", follow_redirects=False).headers["location"] == "/login"  # session ended
    assert _audit_events(workspace)[-1] == "user-disabled"
