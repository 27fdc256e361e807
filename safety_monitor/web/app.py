"""Owns the review workspace's application: `create_app` wires the routers, the static files, the security
headers and the answers to anonymous, forbidden and CSRF-less requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from safety_monitor.bootstrap import App
from safety_monitor.domain.rate_limit import Allowance, SiteRateLimiter
from safety_monitor.service.ingestion import EmbeddedSink, Ingestion, MessageSink
from safety_monitor.web import api, ingest, pages
from safety_monitor.web.access import CsrfRefused, Forbidden, LoginRequired, Workspace, is_api
from streams.decoding import decode
from streams.embedded import to_service

HERE = Path(__file__).resolve().parent

# No inline script and no inline style anywhere: every script and stylesheet is a file the app serves. SVG charts
# use presentation attributes (fill, stroke), which CSP does not count as inline style.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def templates() -> Jinja2Templates:
    """Jinja2 with autoescape on for every template (Starlette's default for .html; forced here for all)."""
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.autoescape = True
    return found


def create_app(
    app: App,
    *,
    public_url: str | None = None,
    manage_lifecycle: bool = True,
    sink: MessageSink | None = None,
    allowance: Allowance | None = None,
) -> FastAPI:
    """The workspace over a wired `App` (its store must be SQL: the pages' queries need `app.reads`).

    Sites' messages (`POST /api/v1/messages`) go to `sink`: by default the embedded pipeline on `app.store`
    (committed before the answer); `safety-monitor web --publish-to kafka` passes a Kafka sink instead. Each site
    may send `allowance` messages (default: domain/rate_limit.Allowance()).

    With `manage_lifecycle`, starting the server migrates the database and stopping it closes the engine. Extend it
    by including more routers whose routes each declare `Depends(Allowed(Action.X))`.
    """
    if app.reads is None:
        raise ValueError("the review workspace needs a SQL store (DATABASE_URL)")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await app.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await app.close()

    web = FastAPI(
        title="safety-monitor review workspace API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by api.openapi at /api/v1/openapi.json, a route of the policy table like any other
        lifespan=lifespan,
    )
    ingestion = Ingestion(
        app.store,
        lambda payload, origin: to_service(decode(payload, origin)),
        sink or EmbeddedSink(app.store, lambda: app.pipeline, app.clock),
        SiteRateLimiter(allowance or Allowance()),
    )
    web.state.workspace = Workspace(app, (public_url or app.settings.public_url).rstrip("/"), ingestion)
    web.state.templates = templates()
    web.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    web.include_router(pages.router)
    web.include_router(api.router)
    web.include_router(ingest.router)

    @web.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @web.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return JSONResponse(
                {"detail": "a valid bearer token is needed"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return RedirectResponse("/login", status_code=303)

    @web.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _refusal(request, 403, str(exc))

    @web.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return _refusal(request, 403, "the form's CSRF token is missing or wrong: reload the page and try again")

    return web


def _refusal(request: Request, status: int, message: str) -> Response:
    if is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    page: Any = request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message, "principal": None}, status_code=status
    )
    return page  # type: ignore[no-any-return]
