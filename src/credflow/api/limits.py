"""Limits enforced before any work: the size of request bodies, and the life of the failed-authentication
audit (credflow.services.access.failed_auth).

``BodyLimit`` counts a body's bytes as they arrive. A ``Content-Length`` above the limit is refused at once,
before the app sees the request; a body that grows past it (chunked, or longer than it said) is cut off where
it crosses the limit: the app's read fails, so no handler runs on part of a body, and the answer is 413
``body_too_large`` whatever the app made of the failed read. An answer sent before the body has been read
whole closes the connection (unless little is left), so the server does not go on receiving what nobody will
read.

The limit is ``max_body_bytes`` for every route, ``max_import_body_bytes`` for solution imports (API and web),
and, for a machine's run result, enough for a log of ``max_log_bytes`` escaped as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credflow.api.errors import problem
from credflow.api.routes import agent, solutions
from credflow.services.access import failed_auth
from credflow.services.core import Core
from credflow.settings import Settings
from credflow.web.pages import solutions as solution_pages

JSON_ESCAPE_GROWTH = 6  # the most one byte of a log can grow to in JSON (\u001b)
DRAIN_BYTES = 64 * 1024  # an unread rest this small is read and dropped by the server; a larger one closes


class BodyTooLarge(Exception):
    """Raised into the app by its read of a body that crossed the limit."""


def larger_bodies(settings: Settings, api_prefix: str) -> list[tuple[re.Pattern[str], set[str], int]]:
    """(path pattern, methods, limit) of the operations that take more than ``max_body_bytes``."""
    imports = max(settings.max_body_bytes, settings.max_import_body_bytes)
    results = max(settings.max_body_bytes, JSON_ESCAPE_GROWTH * settings.max_log_bytes + 64 * 1024)
    wanted: list[tuple[str, APIRouter, Callable[..., Any], int]] = [
        (api_prefix, solutions.router, solutions.import_solution, imports),
        ("", solution_pages.router, solution_pages.import_, imports),
        (api_prefix, agent.router, agent.result, results)]
    found = []
    for prefix, router, endpoint, limit in wanted:
        routes = [r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint]
        if not routes:
            raise RuntimeError(f"no route for {endpoint.__qualname__}: its body limit would be lost")
        found += [(compile_path(prefix + r.path)[0], set(r.methods or ()), limit) for r in routes]
    return found


def too_large(limit: int) -> Any:
    response = problem(413, "body_too_large", "Too large", f"the body is larger than this operation takes "
                                                           f"({limit} bytes)", max_bytes=limit)
    response.headers["Connection"] = "close"
    return response


class BodyLimit:
    def __init__(self, app: ASGIApp, default: int, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.default = default
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        declared_size = int(declared) if declared.isdigit() else None
        expects_body = bool(declared_size) or "chunked" in headers.get("transfer-encoding", "").lower()
        limit = self.default
        if declared_size is not None and declared_size > limit:
            limit = self.limit_for(scope)
            if declared_size > limit:
                await too_large(limit)(scope, receive, send)
                return
        received = 0
        body_done = not expects_body
        exceeded = started = False

        async def counted_receive() -> Message:
            nonlocal received, body_done, exceeded, limit
            if exceeded:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and limit == self.default:
                    limit = self.limit_for(scope)  # looked up only for a body larger than most routes take
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
                body_done = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's own answer to a failed read: ours is sent instead
            if message["type"] == "http.response.start":
                started = True
                unread = None if declared_size is None else declared_size - received
                if not body_done and (unread is None or unread > DRAIN_BYTES):
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await too_large(limit)(scope, receive, send)


def _limit_for(settings: Settings, api_prefix: str) -> Callable[[Scope], int]:
    larger = larger_bodies(settings, api_prefix)

    def limit_for(scope: Scope) -> int:
        for pattern, methods, limit in larger:
            if scope["method"] in methods and pattern.match(scope["path"]):
                return limit
        return settings.max_body_bytes

    return limit_for


class FailedAuthAudit:
    """Writes the failed-authentication records once a minute while the app runs, and what is left once the
    app's own shutdown is complete (after the last request)."""

    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        stop: Callable[[], None] | None = None

        async def lifespan_send(message: Message) -> None:
            nonlocal stop
            if message["type"] == "lifespan.startup.complete":
                stop = failed_auth.start(self.core)
            elif message["type"].startswith("lifespan.shutdown.") and stop is not None:
                stop()
                stop = None
            await send(message)

        try:
            await self.app(scope, receive, lifespan_send)
        finally:
            if stop is not None:
                stop()


def install_limits(app: FastAPI, api_prefix: str) -> None:
    """Add the limits to ``app`` (built by ``create_app``, with ``app.state.core``; the API under ``api_prefix``)."""
    core: Core = app.state.core
    app.add_middleware(BodyLimit, default=core.settings.max_body_bytes,
                       limit_for=_limit_for(core.settings, api_prefix))
    app.add_middleware(FailedAuthAudit, core=core)
