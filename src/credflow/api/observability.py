"""What the server tells its operators: a request id on every answer and log line, the access log, the request
metrics, ``GET /metrics`` and the JSON log format (docs/operations.md, Metrics and Logs).

``RequestContext`` is pure ASGI (no ``BaseHTTPMiddleware``): it gives each request an id (a sane incoming
``X-Request-ID`` is kept, anything else is replaced) that every log line written while the request runs carries
and that the answer's ``X-Request-ID`` header returns, and notes the request in the metrics by its route template
(``/api/v1/environments/{env}/runs``, never the path with its ids or names; ``unmatched`` for a 404 of no route).
With ``CREDFLOW_LOG_FORMAT=json`` it also writes one access line per request.

``GET /metrics`` answers a bearer of ``CREDFLOW_METRICS_TOKEN`` from anywhere; without that setting, only a caller
on the loopback interface that no proxy forwarded. Its labels are ids, kinds and statuses, never names.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credflow.api import route_index
from credflow.api.deps import bearer_of, client_address
from credflow.domain.errors import Forbidden, Unauthenticated
from credflow.services import metrics, scrape
from credflow.services.access import failed_auth
from credflow.services.core import Core

REQUEST_ID: ContextVar[str | None] = ContextVar("credflow_request_id", default=None)
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
FORWARDED = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
UNMATCHED = "unmatched"
access_log = logging.getLogger("credflow.access")


# --- route templates --------------------------------------------------------------------------------------------
def _templates(app: FastAPI) -> dict[Any, list[tuple[re.Pattern[str], str]]]:
    """endpoint -> [(path regex, template)] of every route of ``app``, prefixes included."""
    found: dict[Any, list[tuple[re.Pattern[str], str]]] = {}

    def add(endpoint: Any, template: str) -> None:
        found.setdefault(endpoint, []).append((compile_path(template)[0], template))

    for route in app.router.routes:
        included = route_index.included_routes(route)  # FastAPI's included routers, read without building them
        if included is not None:
            for path, inner in included:
                endpoint = getattr(inner, "endpoint", None)
                if endpoint is not None and not isinstance(inner, Mount):
                    add(endpoint, compile_path(path)[1])
        elif isinstance(route, APIRoute | Route):
            add(route.endpoint, route.path_format)
    return found


class Templates:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.by_endpoint: dict[Any, list[tuple[re.Pattern[str], str]]] | None = None

    def of(self, scope: Scope) -> str:
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        if self.by_endpoint is None:
            self.by_endpoint = _templates(self.app)
        candidates = self.by_endpoint.get(endpoint, ())
        if len(candidates) == 1:
            return candidates[0][1]
        for pattern, template in candidates:
            if pattern.match(scope.get("path", "")):
                return template
        return UNMATCHED


# --- every request ----------------------------------------------------------------------------------------------
def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                given = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if SANE_REQUEST_ID.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)


class RequestContext:
    def __init__(self, app: ASGIApp, templates: Templates, access: bool) -> None:
        self.app = app
        self.templates = templates
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = self.templates.of(scope)
            metrics.request_done(scope["method"], route, status, seconds)
            if self.access:
                access_log.info("%s %s %s", scope["method"], route, status,
                                extra={"method": scope["method"], "route": route, "status": status,
                                       "duration_ms": round(seconds * 1000, 2)})
            REQUEST_ID.reset(token)


# --- GET /metrics -----------------------------------------------------------------------------------------------
def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def may_scrape(core: Core, request: Request) -> None:
    """Raise unless this caller may read the metrics (the module's text)."""
    expected = core.settings.metrics_token
    if expected:
        bearer = bearer_of(request) or ""

        def check() -> None:
            if not hmac.compare_digest(bearer.encode(), expected.encode()):
                raise Unauthenticated("send Authorization: Bearer <CREDFLOW_METRICS_TOKEN>", code="invalid_token")

        failed_auth.attempt(core, client_address(request), bearer, check, reason="invalid_metrics_token",
                            path="/metrics")
        return
    proxied = any(name in FORWARDED for name, _ in request.scope.get("headers", ()))
    if proxied or not _loopback(client_address(request)):
        raise Forbidden("the metrics answer callers on this host only; set CREDFLOW_METRICS_TOKEN to scrape them "
                        "from elsewhere", code="metrics_not_allowed")


async def metrics_endpoint(request: Request) -> Response:
    core: Core = request.app.state.core
    may_scrape(core, request)
    body = await run_in_threadpool(scrape.render, core)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def install(app: FastAPI) -> None:
    """Add ``/metrics`` and the request context to ``app`` (built by ``create_app``, with ``app.state.core``)."""
    core: Core = app.state.core
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestContext, templates=Templates(app), access=core.settings.log_format == "json")


# --- JSON lines -------------------------------------------------------------------------------------------------
ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (and an access line's fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
            "request_id": REQUEST_ID.get()}
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            # The class and where, never the message: a message may quote a value.
            line["error"] = record.exc_info[0].__name__
            line["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: str) -> None:
    """The server's logging: readable lines, or (``json``) JSON lines on stderr."""
    if log_format != "json":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
