"""The routing narrowed by path (``api.route_index``) answers every request as the whole router does: for each
route's template, filled in, with and without a trailing slash, by each method, the same status and error code
from the app with the index and from the same app without it; and a route added after the app was built is
found too; and the routes read off the included routers as declared are those FastAPI builds from them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from starlette.routing import compile_path

from credflow.api.app import create_app
from credflow.api.observability import _templates
from credflow.api.route_index import RouteIndex, included_routes, keys
from credflow.services.core import Core
from credflow.settings import Settings


def _answer(client: TestClient, method: str, path: str) -> tuple[int, str | None, str | None]:
    resp = client.request(method, path, follow_redirects=False)
    code = resp.json().get("code") if "json" in resp.headers.get("content-type", "") and resp.content else None
    return resp.status_code, code, resp.headers.get("location")


def test_the_index_answers_every_route_as_the_whole_router(settings: Settings, core: Core) -> None:
    indexed = create_app(settings, core)
    assert isinstance(indexed.router.middleware_stack, RouteIndex)
    whole = create_app(settings, core)
    whole.router.middleware_stack = whole.router.middleware_stack.full  # type: ignore[attr-defined]
    templates = sorted({t for found in _templates(indexed).values() for _, t in found})
    assert len(templates) > 100 and "/api/v1/me" in templates and "/healthz" in templates
    paths = [re.sub(r"\{[^}]+\}", "x1", t) for t in templates]
    paths += [p.rstrip("/") + "/" for p in paths] + ["/nothing/here", "/api/v1/nothing", "/api/v1/environments"]
    with TestClient(indexed) as a, TestClient(whole) as b:
        for path in paths:
            for method in ("GET", "POST", "DELETE"):
                assert _answer(a, method, path) == _answer(b, method, path), (method, path)


def test_a_route_added_later_is_found(settings: Settings, core: Core) -> None:
    app = create_app(settings, core)

    @app.get("/added-later")
    async def added() -> dict[str, str]:
        return {"found": "yes"}

    with TestClient(app) as client:
        assert client.get("/added-later").json() == {"found": "yes"}
        assert client.get("/healthz").json() == {"status": "ok"}



def test_the_routes_read_as_declared_are_those_fastapi_builds(settings: Settings, core: Core) -> None:
    app = create_app(settings, core)
    included = [route for route in app.router.routes if hasattr(route, "effective_route_contexts")]
    assert len(included) > 10
    for route in included:
        declared = included_routes(route)
        assert declared is not None, route
        built = list(route.effective_route_contexts())  # type: ignore[attr-defined]
        assert len(declared) == len(built), route
        for (path, inner), context in zip(declared, built, strict=True):
            effective = context.starlette_route or context
            assert compile_path(path)[1] == effective.path_format, (path, effective.path_format)
            assert getattr(inner, "endpoint", None) == getattr(effective, "endpoint", None), path
        exact, beginnings = set(), set()
        for context in built:
            path = (context.starlette_route or context).path_format
            if "{" in path:
                beginnings.add(path.split("{", 1)[0].rstrip("/"))
            else:
                exact.add(path.rstrip("/"))
        assert keys(route) == (exact, beginnings), route
