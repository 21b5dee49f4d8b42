"""Routing by literal prefix: a request is matched only against the routes that could match its path.

FastAPI tries an app's routes one by one, and with every router included that is a few hundred matches per
request, most of a cheap request's time. ``install(app)`` puts an index in front of the app's router: each of its
top-level routes (an included router counts as one) is known by the literal beginnings of its paths (what comes
before the first ``{``), and a request goes to a copy of the router holding only the top-level routes whose
beginnings its path starts with, in their order. A route left out cannot match the path (nor the path with a
slash added or taken off, which the router tries for its redirects), so what answers, a 404 or 405 included, is
what the whole router would answer. A route whose paths cannot be read (one of a kind the index does not know)
is kept for every path.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Host, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

PATHS_KEPT = 4096  # paths whose narrowed router is remembered (those of agents repeat; ids make the rest vary)


def _paths(route: BaseRoute) -> list[tuple[str, bool]] | None:
    """The path templates a top-level route matches, as routed (prefixes included), each with whether it matches
    what follows it too (a mount); None when unknown."""
    if isinstance(route, Host):
        return None
    if isinstance(route, Mount):
        return [(route.path, True)]
    if isinstance(route, Route):
        return [(route.path, False)]
    found = included_routes(route)
    if found is None or any(isinstance(inner, Host) for _, inner in found):
        return None
    return [((path.rstrip("/"), True) if isinstance(inner, Mount) else (path, False)) for path, inner in found]


def included_routes(route: Any) -> list[tuple[str, BaseRoute]] | None:
    """The routes of FastAPI's included router ``route`` (routers included in it flattened), each with its path
    as routed (the prefixes it was included with before it); None when ``route`` is not one or a route there has
    no path. Read off the routes as declared, without building them: FastAPI builds a route at its first
    request, and building them all at once would cost every new app a few hundred milliseconds."""
    router = getattr(route, "original_router", None)
    prefix = getattr(getattr(route, "include_context", None), "prefix", None)
    if router is None or not isinstance(prefix, str):
        return None
    found: list[tuple[str, BaseRoute]] = []
    for inner in router.routes:
        if hasattr(inner, "include_context"):
            nested = included_routes(inner)
            if nested is None:
                return None
            found += [(prefix + path, r) for path, r in nested]
        elif isinstance(getattr(inner, "path", None), str):
            found.append((prefix + inner.path, inner))
        else:
            return None
    return found


def keys(route: BaseRoute) -> tuple[set[str], set[str]]:
    """(exact, beginnings) of a route: the paths it matches whole, and what the others begin with, each without a
    trailing slash. A route of a kind not known here begins with "" (is tried for every path)."""
    try:
        paths = _paths(route)
    except Exception:  # noqa: BLE001 - whatever a route of an unknown kind does, it is kept for every path
        paths = None
    if not paths:
        return set(), {""}
    exact, beginnings = set(), set()
    for path, mount in paths:
        if "{" in path or mount:
            beginnings.add(path.split("{", 1)[0].rstrip("/"))
        else:
            exact.add(path.rstrip("/"))
    return exact, beginnings


class RouteIndex:
    """The app's router, narrowed per request to the top-level routes that could match (the module's text)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.full = router.middleware_stack
        self.routes = list(router.routes)
        self.exact: dict[str, set[int]] = {}
        self.beginnings: list[tuple[str, int]] = []
        for i, route in enumerate(self.routes):
            exact, beginnings = keys(route)
            for path in exact:
                self.exact.setdefault(path, set()).add(i)
            self.beginnings += [(b, i) for b in sorted(beginnings)]
        self.narrowed: dict[tuple[int, ...], ASGIApp] = {}
        self.by_path: dict[str, ASGIApp] = {}

    def _narrowed(self, path: str) -> ASGIApp:
        found = self.by_path.get(path)
        if found is not None:
            return found
        picked = set(self.exact.get(path.rstrip("/"), ()))
        picked.update(i for b, i in self.beginnings if path.startswith(b))
        key = tuple(sorted(picked))
        found = self.narrowed.get(key)
        if found is None:
            narrow: Any = copy.copy(self.router)
            narrow.routes = [self.routes[i] for i in key]
            found = self.narrowed.setdefault(key, narrow.app)
        if len(self.by_path) >= PATHS_KEPT:
            self.by_path.clear()
        self.by_path[path] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path") or self.router.routes != self.routes:
            await self.full(scope, receive, send)  # also once routes were added after install: not indexed
            return
        scope.setdefault("router", self.router)  # url_for sees every route
        await self._narrowed(scope["path"])(scope, receive, send)


def install(app: FastAPI) -> None:
    """Route ``app``'s requests through the index; call once every route is added. Does nothing when the app has
    routes of low priority (which match after all others, wherever they were added)."""
    router = app.router
    if getattr(router, "_low_priority_routes", None) or any(
            getattr(r, "effective_low_priority_routes", list)() for r in router.routes):
        return
    router.middleware_stack = RouteIndex(router)
