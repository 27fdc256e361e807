"""Owns `POST /api/v1/messages`, the door trial sites publish through: it reads the size-capped body (a JSON array or
NDJSON), hands the messages to the ingestion service and answers with its receipt, or with why it refused."""

from __future__ import annotations

import json
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel

from safety_monitor.domain.access import Action
from safety_monitor.service.ingestion import ForeignSite, RateLimited, publish_messages
from safety_monitor.web.access import Allowed, Principal, workspace

router = APIRouter(prefix="/api/v1")
Publisher = Annotated[Principal, Depends(Allowed(Action.PUBLISH_MESSAGES))]

MAX_BODY_BYTES = 8 * 1024 * 1024  # 8 MiB: a batch of a few thousand messages; beyond it, 413
MAX_MESSAGES = 5000  # per request; below the rate limit's burst, so one request can always fit
NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")


class DeadLetteredOut(BaseModel):
    msg_id: str | None
    reason: str


class ReceiptOut(BaseModel):
    """The durable receipt: sent only after the batch was committed (embedded) or acknowledged by Kafka."""

    accepted: int
    duplicates: int
    dead_lettered: list[DeadLetteredOut]


class Refusal(BaseModel):
    detail: str


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body is over {MAX_BODY_BYTES} bytes: send smaller batches")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body is over {MAX_BODY_BYTES} bytes: send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _payloads(body: bytes, content_type: str) -> list[str]:
    """One wire message's text per element (JSON array) or per non-blank line (NDJSON, as in replay files)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"the body is not UTF-8 (byte {exc.start})") from None
    kind = content_type.partition(";")[0].strip().lower()
    if kind in NDJSON:
        payloads = [line for line in text.splitlines() if line.strip()]
    elif kind == "application/json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HTTPException(400, f"the body is not JSON: {exc.msg} at line {exc.lineno}") from None
        except RecursionError:
            raise HTTPException(400, "the body nests JSON too deeply to be a batch of messages") from None
        if not isinstance(document, list):
            raise HTTPException(400, "the body must be a JSON array of messages (or NDJSON, one message a line)")
        # Each element goes to the decoder as its own text; the inbox compares a retried message as a document,
        # so re-serialising it here does not turn a retry into a conflict.
        payloads = [json.dumps(element, ensure_ascii=False) for element in document]
    else:
        raise HTTPException(415, "send Content-Type application/json (an array) or application/x-ndjson")
    if len(payloads) > MAX_MESSAGES:
        raise HTTPException(413, f"{len(payloads)} messages in one request: at most {MAX_MESSAGES}")
    return payloads


@router.post(
    "/messages",
    response_model=ReceiptOut,
    responses={
        400: {"model": Refusal},
        401: {"model": Refusal},
        403: {"model": Refusal},
        413: {"model": Refusal},
        415: {"model": Refusal},
        429: {"model": Refusal},
    },
)
async def publish(request: Request, response: Response, principal: Publisher) -> ReceiptOut:
    """Publish a site's messages (a site token only). The answer comes once they are durable; a retry of the same
    messages is counted as duplicates, never applied twice. A message of another site refuses the whole request."""
    ws = workspace(request)
    payloads = _payloads(await _body(request), request.headers.get("content-type", ""))
    request_id = secrets.token_hex(8)  # names the request in the messages' origin: https:SITE:REQUEST#N
    response.headers["X-Request-Id"] = request_id
    try:
        receipt = await publish_messages(
            ws.ingestion, principal.user, payloads, request_id=request_id, at=ws.app.clock.now()
        )
    except ForeignSite as exc:
        raise HTTPException(403, str(exc)) from None
    except RateLimited as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    letters = [DeadLetteredOut(msg_id=d.msg_id, reason=d.reason) for d in receipt.dead_lettered]
    return ReceiptOut(accepted=receipt.accepted, duplicates=receipt.duplicates, dead_lettered=letters)
