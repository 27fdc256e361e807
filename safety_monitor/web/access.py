"""Owns who is asking and whether they may: the one dependency on every route. It authenticates (a session
cookie for pages, a bearer token for the API), checks CSRF on page forms, and checks the domain's policy table."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import Request

from safety_monitor.bootstrap import App
from safety_monitor.domain.access import Action, may
from safety_monitor.domain.users import Session, User
from safety_monitor.service.accounts import session_user, token_user
from safety_monitor.service.ingestion import Ingestion
from safety_monitor.service.workspace import QueueView, alert_queue
from safety_monitor.service.workspace_views import QueueFilters

SESSION_COOKIE = "sm_session"
LOGIN_CSRF_COOKIE = "sm_login_csrf"
API_PREFIX = "/api/"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """No valid session (pages: redirect to /login) or no valid bearer token (API: 401)."""


class Forbidden(Exception):
    """Authenticated, but the policy table does not give the user's role this action (403)."""

    def __init__(self, action: Action | None, role: str = "") -> None:
        self.action = action
        super().__init__(f"a {role} may not {action.value if action else 'do this'}")


class CsrfRefused(Exception):
    """A page form posted without the CSRF token of the session (403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    session: Session | None  # None for the API (a bearer token)

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token if self.session else ""


@dataclass(frozen=True, slots=True)
class Workspace:
    """What the routes need, kept on `app.state.workspace` by `create_app`."""

    app: App
    public_url: str
    ingestion: Ingestion  # where `POST /api/v1/messages` sends a site's batch (embedded pipeline or Kafka)

    async def queue(self, filters: QueueFilters, user_name: str) -> QueueView:
        """The alert queue as `user_name` sees it now: what the queue page and `GET /api/v1/alerts` show."""
        assert self.app.reads is not None
        return await alert_queue(
            self.app.reads, self.app.pipeline.ruleset, filters, user_name=user_name, now=self.app.clock.now()
        )


def workspace(request: Request) -> Workspace:
    found = request.app.state.workspace
    assert isinstance(found, Workspace)
    return found


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def check_csrf(request: Request, expected: str) -> None:
    """The form's `csrf_token` must equal `expected` (compared in constant time)."""
    form = await request.form()  # Starlette keeps the parsed form: the route reads the same one
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
        raise CsrfRefused()


@dataclass(frozen=True, slots=True)
class Allowed:
    """The one dependency every route declares: `Allowed(Action.X)` lets through the users whose role the domain's
    policy table (domain/access.POLICY) gives X; `Allowed(None)` marks a public route (login, health). The test of
    the route matrix reads these from `app.routes`, so a route without one fails the suite."""

    action: Action | None

    async def __call__(self, request: Request) -> Principal | None:
        if self.action is None:
            return None
        ws = workspace(request)
        now = ws.app.clock.now()
        principal: Principal | None = None
        if is_api(request):
            token = _bearer(request)
            user = await token_user(ws.app.store, token) if token else None
            principal = Principal(user, None) if user is not None else None
        else:
            session_id = request.cookies.get(SESSION_COOKIE)
            found = await session_user(ws.app.store, session_id, at=now) if session_id else None
            principal = Principal(found.user, found.session) if found is not None else None
        if principal is None:
            raise LoginRequired()
        if not may(principal.user.role, self.action):
            raise Forbidden(self.action, principal.user.role.value)
        if principal.session is not None and request.method not in _SAFE_METHODS:
            await check_csrf(request, principal.session.csrf_token)
        return principal
