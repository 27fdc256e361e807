"""Owns the workspace's pages: login and logout, the alert queue, one alert with its review forms, a subject's
timeline, eDISH, the SAE clocks and the incidence table. Each route parses the request, calls one service
function and renders a template; who may do what is decided by its `Allowed` dependency alone."""

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from safety_monitor.domain.access import POLICY, Action
from safety_monitor.domain.review import ActionKind, ReviewRefused
from safety_monitor.domain.users import AccountRefused
from safety_monitor.service.accounts import LoginRefused, disable_user, list_users, log_in, log_out, revoke_tokens
from safety_monitor.service.review import UnknownAlert
from safety_monitor.service.views import incidence_table
from safety_monitor.service.workspace import (
    alert_page,
    edish_points,
    review_alert,
    sae_clocks,
    subject_timeline,
)
from safety_monitor.service.workspace_views import QueueFilters
from safety_monitor.web import charts
from safety_monitor.web.access import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Allowed,
    CsrfRefused,
    Principal,
    workspace,
)

router = APIRouter(include_in_schema=False)

PUBLIC = Depends(Allowed(None))
Reader = Annotated[Principal, Depends(Allowed(Action.READ))]
Text = Annotated[str | None, Query(max_length=128)]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    principal = context.get("principal")
    allowed = POLICY[principal.user.role] if isinstance(principal, Principal) else frozenset()
    response: Response = request.app.state.templates.TemplateResponse(
        request, name, {"allowed": {a.value for a in allowed}, **context}, status_code=status
    )
    return response


def _cookie(response: Response, request: Request, name: str, value: str) -> None:
    # HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site POSTs), Secure when served over TLS.
    secure = request.url.scheme == "https"
    response.set_cookie(name, value, httponly=True, samesite="lax", secure=secure, path="/")


@router.get("/healthz", dependencies=[PUBLIC])
async def healthz(request: Request) -> Response:
    reads = workspace(request).app.reads
    reachable = reads is not None and await reads.database_reachable()
    body = {"status": "ok" if reachable else "degraded", "database": "reachable" if reachable else "unreachable"}
    return JSONResponse(body, status_code=200 if reachable else 503)


@router.get("/login", dependencies=[PUBLIC])
async def login_form(request: Request, failed: int = 0) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", {"csrf_token": token, "failed": bool(failed), "principal": None})
    _cookie(response, request, LOGIN_CSRF_COOKIE, token)
    return response


@router.post("/login", dependencies=[PUBLIC])
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    # Login CSRF: the form's token must equal the cookie set with the form (a cross-site form cannot read it).
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(csrf_token, expected):
        raise CsrfRefused()
    ws = workspace(request)
    try:
        session = await log_in(ws.app.store, ws.app.hasher, username, password, at=ws.app.clock.now())
    except LoginRefused:
        return RedirectResponse("/login?failed=1", status_code=303)
    response = RedirectResponse("/alerts", status_code=303)
    _cookie(response, request, SESSION_COOKIE, session.session_id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.get("/logout")
async def logout_form(request: Request, principal: Reader) -> Response:
    return render(request, "logout.html", {"principal": principal})


@router.post("/logout")
async def logout(request: Request, principal: Reader) -> Response:
    ws = workspace(request)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    await log_out(ws.app.store, session_id, at=ws.app.clock.now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(principal: Reader) -> Response:
    return RedirectResponse("/alerts", status_code=303)


@router.get("/alerts")
async def alerts(
    request: Request,
    principal: Reader,
    rule: Text = None,
    site: Text = None,
    subject: Text = None,
    status: Text = None,
    severity: Text = None,
    drug: Text = None,
    mine: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    ws = workspace(request)
    filters = QueueFilters(
        rule or None, site or None, subject or None, status or None, severity or None, drug or None, mine, limit, offset
    )
    view = await ws.queue(filters, principal.user.name)
    template = "_queue.html" if request.headers.get("hx-request") == "true" else "alerts.html"
    kept = {"rule": rule, "site": site, "subject": subject, "status": status, "severity": severity, "drug": drug}
    query = urlencode({**{k: v for k, v in kept.items() if v}, **({"mine": "true"} if mine else {}), "limit": limit})
    context = {"principal": principal, "view": view, "now": ws.app.clock.now(), "query": query}
    return render(request, template, context)


@router.get("/alerts/{alert_id}")
async def alert(request: Request, alert_id: str, principal: Reader, refused: Text = None) -> Response:
    ws = workspace(request)
    assert ws.app.reads is not None
    try:
        page = await alert_page(ws.app.store, ws.app.reads, ws.app.pipeline.ruleset, alert_id, now=ws.app.clock.now())
    except UnknownAlert as exc:
        return render(request, "error.html", {"principal": principal, "status": 404, "message": str(exc)}, 404)
    return render(request, "alert.html", {"principal": principal, "page": page, "refused": refused})


def _review_route(kind: ActionKind) -> None:
    action = Action(kind.value)

    async def record(
        request: Request,
        alert_id: str,
        principal: Annotated[Principal, Depends(Allowed(action))],
        reason: Annotated[str, Form(max_length=4000)] = "",
        outcome: Annotated[str | None, Form(max_length=64)] = None,
        drug: Annotated[str | None, Form(max_length=32)] = None,
        duplicate_of: Annotated[str | None, Form(max_length=32)] = None,
    ) -> Response:
        ws = workspace(request)
        values = _values(kind, outcome, drug)
        try:
            await review_alert(
                ws.app.store,
                principal.user.name,
                alert_id,
                kind,
                reason,
                ws.app.clock.now(),
                duplicate_of_id=duplicate_of or None,
                **values,
            )
        except UnknownAlert as exc:
            return render(request, "error.html", {"principal": principal, "status": 404, "message": str(exc)}, 404)
        except (ReviewRefused, AccountRefused) as exc:
            assert ws.app.reads is not None
            now = ws.app.clock.now()
            page = await alert_page(ws.app.store, ws.app.reads, ws.app.pipeline.ruleset, alert_id, now=now)
            return render(request, "alert.html", {"principal": principal, "page": page, "refused": str(exc)}, 409)
        return RedirectResponse(f"/alerts/{alert_id}#history", status_code=303)

    record.__name__ = f"review_{kind.name.lower()}"
    router.add_api_route(f"/alerts/{{alert_id}}/{kind.value}", record, methods=["POST"])


def _values(kind: ActionKind, outcome: str | None, drug: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if kind in (ActionKind.ADJUDICATE, ActionKind.CAUSALITY, ActionKind.EXPECTEDNESS):
        values["value"] = outcome
    if kind is ActionKind.CAUSALITY:
        values["drug"] = drug
    return values


REVIEW_KINDS = (
    ActionKind.ACKNOWLEDGE,
    ActionKind.ADJUDICATE,
    ActionKind.CAUSALITY,
    ActionKind.EXPECTEDNESS,
    ActionKind.COMMENT,
)
for _kind in REVIEW_KINDS:
    _review_route(_kind)


@router.get("/subjects/{usubjid}")
async def subject(request: Request, usubjid: str, principal: Reader) -> Response:
    ws = workspace(request)
    assert ws.app.reads is not None
    data = await subject_timeline(ws.app.reads, usubjid)
    if data is None:
        message = f"no subject {usubjid[:64]!r}"
        return render(request, "error.html", {"principal": principal, "status": 404, "message": message}, 404)
    return render(request, "subject.html", {"principal": principal, "data": data, "chart": charts.timeline(data)})


@router.get("/edish")
async def edish(request: Request, principal: Reader) -> Response:
    ws = workspace(request)
    assert ws.app.reads is not None
    points = await edish_points(ws.app.reads)
    return render(request, "edish.html", {"principal": principal, "points": points, "chart": charts.edish(points)})


@router.get("/sae-clock")
async def sae_clock(request: Request, principal: Reader) -> Response:
    ws = workspace(request)
    assert ws.app.reads is not None
    rows = await sae_clocks(ws.app.reads, ws.app.pipeline.ruleset, ws.app.clock.now())
    return render(request, "sae_clock.html", {"principal": principal, "rows": rows})


@router.get("/incidence")
async def incidence(request: Request, principal: Reader, treatment_emergent: bool = False) -> Response:
    ws = workspace(request)
    rows = await incidence_table(ws.app.store, treatment_emergent_only=treatment_emergent)
    context = {"principal": principal, "rows": rows, "treatment_emergent": treatment_emergent}
    return render(request, "incidence.html", context)


Admin = Annotated[Principal, Depends(Allowed(Action.MANAGE_USERS))]


@router.get("/admin/users")
async def users(request: Request, principal: Admin, done: Text = None) -> Response:
    ws = workspace(request)
    found = await list_users(ws.app.store)
    context = {"principal": principal, "users": found, "now": ws.app.clock.now(), "done": done}
    return render(request, "users.html", context)


@router.post("/admin/users/{name}/disable")
async def disable(request: Request, name: str, principal: Admin) -> Response:
    ws = workspace(request)
    try:
        await disable_user(ws.app.store, name, at=ws.app.clock.now(), actor=principal.user.name)
    except AccountRefused as exc:
        return render(request, "error.html", {"principal": principal, "status": 404, "message": str(exc)}, 404)
    return RedirectResponse(f"/admin/users?{urlencode({'done': f'{name} disabled'})}", status_code=303)


@router.post("/admin/users/{name}/revoke-tokens")
async def revoke(request: Request, name: str, principal: Admin) -> Response:
    ws = workspace(request)
    try:
        count = await revoke_tokens(ws.app.store, name, at=ws.app.clock.now(), actor=principal.user.name)
    except AccountRefused as exc:
        return render(request, "error.html", {"principal": principal, "status": 404, "message": str(exc)}, 404)
    return RedirectResponse(f"/admin/users?{urlencode({'done': f'{count} token(s) of {name} revoked'})}", 303)
