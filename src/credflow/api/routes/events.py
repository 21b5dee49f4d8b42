"""The Event Grid / CloudEvents webhook, at ``/events/eventgrid`` (and under ``/api/v1``).

Authenticated by an event key (``?key=`` or the ``aeg-sas-key`` header), not by a user token, checked before
the body is read. Event Grid drops events answered 400/401/403/413 and retries the others, so those mean a
fault of the sender only: a bad key, a body that is not events or is too large. Everything of ours that fails
is a 5xx, and is retried.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from credflow.api.deps import CoreDep, client_address
from credflow.api.errors import problem_responses
from credflow.api.models import DeliveryResult, SubscriptionValidation
from credflow.services.access import failed_auth
from credflow.services.secrets import event_keys, rotation

PATH = "/events/eventgrid"
_EVENT = {"type": "object", "additionalProperties": True,
          "description": "an Event Grid event (eventType, subject, data, ...) or a CloudEvent (type, source, ...)"}
_DELIVERY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"anyOf": [{"type": "array", "items": _EVENT}, _EVENT]}},
    "application/cloudevents+json": {"schema": _EVENT},
    "application/cloudevents-batch+json": {"schema": {"type": "array", "items": _EVENT}}}}}
# 400 and 401 are the sender's fault (Event Grid drops the event); a 500 is ours, and Event Grid retries. 422
# stands where FastAPI would document its own validation answer: these parameters take any string.
_DELIVERY_PROBLEMS = problem_responses(400, 401, 422, 500)
_HANDSHAKE = {200: {"description": "delivery granted", "headers": {
    "WebHook-Allowed-Origin": {"required": True, "schema": {"type": "string"},
                               "description": "the WebHook-Request-Origin that was asked for"},
    "WebHook-Allowed-Rate": {"required": True, "schema": {"type": "string"},
                             "description": "the WebHook-Request-Rate that was asked for, or *"},
    "Allow": {"required": True, "schema": {"type": "string"}, "description": "POST, OPTIONS"}}},
    **problem_responses(400, 401, 422)}
router = APIRouter(tags=["rotation"])
api_router = APIRouter(tags=["rotation"], include_in_schema=False)  # the same, under /api/v1


def _sender(request: Request, core: CoreDep, key: str | None = None,
            aeg_sas_key: Annotated[str | None, Header()] = None) -> tuple[str, str]:
    """The (key id, environment id) of the event key sent: 401 without a valid one, 429 from an address with too
    many failures. Checked before the body is read, so a caller without a key cannot make the server read one."""
    sent = (key or aeg_sas_key or "").strip()
    if not sent:
        return event_keys.authenticate_key(core, None)  # 401 missing_event_key: no attempt to count
    return failed_auth.attempt(core, client_address(request), sent, lambda: event_keys.authenticate_key(core, sent),
                               reason="invalid_event_key", path=request.url.path)


Sender = Annotated[tuple[str, str], Depends(_sender)]


async def eventgrid(request: Request, core: CoreDep, sender: Sender) -> dict[str, Any]:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await run_in_threadpool(rotation.receive, core, sender, body, headers.get("content-type", ""), headers)


def handshake(sender: Sender, webhook_request_origin: Annotated[str | None, Header()] = None,
              webhook_request_rate: Annotated[str | None, Header()] = None) -> Response:
    granted = rotation.webhook_grant(webhook_request_origin, webhook_request_rate)
    return Response(status_code=200, headers=granted)


for _router in (router, api_router):
    _router.add_api_route(PATH, eventgrid, methods=["POST"], summary="Event Grid / CloudEvents deliveries",
                          response_model=SubscriptionValidation | DeliveryResult, openapi_extra=_DELIVERY,
                          response_description="the validation handshake's answer, or what became of the events",
                          responses=_DELIVERY_PROBLEMS)
    _router.add_api_route(PATH, handshake, methods=["OPTIONS"], summary="CloudEvents webhook handshake",
                          response_class=Response, responses=_HANDSHAKE)
