"""Owns the workspace's JSON API under /api/v1: the alert queue with filters and paging, one alert with its review
history, and the review actions, with a personal bearer token and exactly the rights of the pages."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from safety_monitor.domain.access import Action
from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.review import ActionKind, ReviewAction, ReviewRefused
from safety_monitor.domain.users import AccountRefused
from safety_monitor.service.review import UnknownAlert
from safety_monitor.service.workspace import AlertPage, alert_page, review_alert
from safety_monitor.service.workspace_views import QueueFilters
from safety_monitor.web.access import Allowed, Principal, workspace

router = APIRouter(prefix="/api/v1")
Reader = Annotated[Principal, Depends(Allowed(Action.READ))]
Text = Annotated[str | None, Query(max_length=128)]


class AlertOut(BaseModel):
    id: str
    key: str
    rule_id: str
    rule_title: str
    subject_id: str
    study_id: str
    site_id: str | None = None
    term: str
    status: str  # open / basis_removed
    review_status: str | None = None  # new / acknowledged / adjudicated
    grade: int
    severity: str
    raised_at: datetime
    updated_at: datetime
    detail: str


class AlertList(BaseModel):
    alerts: list[AlertOut]
    total: int
    limit: int
    offset: int


class ReviewActionOut(BaseModel):
    at: datetime
    reviewer: str
    role: str
    kind: str
    old: str | None
    new: str | None
    drug: str | None
    duplicate_of: str | None
    reason: str
    clock_effect: str | None


class AlertDetail(AlertOut):
    adjudication: str | None
    causality: dict[str, str]
    expectedness: str | None
    rationale: str | None
    history: list[ReviewActionOut]


class ReviewIn(BaseModel):
    """A review action: `reason` always; `outcome` for adjudicate, causality and expectedness; `drug` for causality;
    `duplicate_of` (an alert id) for an adjudication as duplicate."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=4000)
    outcome: str | None = Field(default=None, max_length=64)
    drug: str | None = Field(default=None, max_length=32)
    duplicate_of: str | None = Field(default=None, max_length=32)


def _alert(alert: Alert, site_id: str | None = None, review_status: str | None = None) -> dict[str, Any]:
    return {
        "id": alert.id,
        "key": alert.key,
        "rule_id": alert.rule_id,
        "rule_title": alert.rule_title,
        "subject_id": alert.subject_id,
        "study_id": alert.study_id,
        "site_id": site_id,
        "term": alert.term,
        "status": alert.status.value,
        "review_status": review_status,
        "grade": alert.grade,
        "severity": alert.severity,
        "raised_at": alert.raised_at,
        "updated_at": alert.updated_at,
        "detail": alert.detail,
    }


def _action(a: ReviewAction) -> ReviewActionOut:
    return ReviewActionOut(
        at=a.at,
        reviewer=a.reviewer,
        role=a.role.value,
        kind=a.kind.value,
        old=a.old_value,
        new=a.new_value,
        drug=a.drug,
        duplicate_of=a.duplicate_of,
        reason=a.reason,
        clock_effect=a.clock_effect.value if a.clock_effect else None,
    )


def _detail(page: AlertPage) -> AlertDetail:
    review = page.review
    state = review.state
    return AlertDetail(
        **_alert(review.alert, review_status=state.status.value),
        adjudication=state.adjudication_text,
        causality={drug: value.value for drug, value in state.causality.items()},
        expectedness=state.expectedness.value if state.expectedness else None,
        rationale=page.rule.rationale if page.rule else None,
        history=[_action(a) for a in review.actions],
    )


@router.get("/openapi.json", dependencies=[Depends(Allowed(None))], include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/alerts", response_model=AlertList)
async def list_alerts(
    request: Request,
    principal: Reader,
    rule_id: Text = None,
    site_id: Text = None,
    subject_id: Text = None,
    review_status: Text = None,
    severity: Text = None,
    drug: Text = None,
    new_since_my_last_review: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AlertList:
    """Open alerts by severity then age, with the filters of the queue page, one page at a time."""
    ws = workspace(request)
    filters = QueueFilters(
        rule_id, site_id, subject_id, review_status, severity, drug, new_since_my_last_review, limit, offset
    )
    view = await ws.queue(filters, principal.user.name)
    alerts = [AlertOut(**_alert(r.alert, r.site_id, r.review_status)) for r in view.rows.rows]
    return AlertList(alerts=alerts, total=view.rows.total, limit=limit, offset=offset)


async def _page(request: Request, alert_id: str) -> AlertPage:
    ws = workspace(request)
    assert ws.app.reads is not None
    try:
        return await alert_page(ws.app.store, ws.app.reads, ws.app.pipeline.ruleset, alert_id, now=ws.app.clock.now())
    except UnknownAlert as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
async def get_alert(request: Request, alert_id: str, principal: Reader) -> AlertDetail:
    """One alert with its review state and its whole review history."""
    return _detail(await _page(request, alert_id))


def _review_route(kind: ActionKind) -> None:
    action = Action(kind.value)

    async def record(
        request: Request,
        alert_id: str,
        body: ReviewIn,
        principal: Annotated[Principal, Depends(Allowed(action))],
    ) -> AlertDetail:
        ws = workspace(request)
        values: dict[str, Any] = {}
        if kind in (ActionKind.ADJUDICATE, ActionKind.CAUSALITY, ActionKind.EXPECTEDNESS):
            values["value"] = body.outcome
        if kind is ActionKind.CAUSALITY:
            values["drug"] = body.drug
        try:
            await review_alert(
                ws.app.store,
                principal.user.name,
                alert_id,
                kind,
                body.reason,
                ws.app.clock.now(),
                duplicate_of_id=body.duplicate_of,
                **values,
            )
        except UnknownAlert as exc:
            raise HTTPException(404, str(exc)) from None
        except (ReviewRefused, AccountRefused) as exc:
            raise HTTPException(409, str(exc)) from None
        return _detail(await _page(request, alert_id))

    record.__name__ = f"{kind.name.lower()}_alert"
    record.__doc__ = f"Record `{kind.value}` on the alert as the token's user; 403 for a role that may not."
    router.add_api_route(f"/alerts/{{alert_id}}/{kind.value}", record, methods=["POST"], response_model=AlertDetail)


for _kind in (
    ActionKind.ACKNOWLEDGE,
    ActionKind.ADJUDICATE,
    ActionKind.CAUSALITY,
    ActionKind.EXPECTEDNESS,
    ActionKind.COMMENT,
):
    _review_route(_kind)
