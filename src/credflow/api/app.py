"""``create_app(settings)`` builds everything: the core, the routes and the background workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from credflow import __version__
from credflow.api import errors, lifecycle, observability, route_index
from credflow.api.limits import install_limits
from credflow.api.routes import (
    agent,
    audit,
    cloud_flows,
    connections,
    credentials,
    desktop_flows,
    events,
    health,
    identity,
    machines,
    passwords,
    rotation,
    runs,
    secret_stores,
    sharing,
    solutions,
    store_kinds,
    teams,
    users,
    variables,
)
from credflow.services.automation import hook_delivery, scheduler
from credflow.services.core import Core, build_core
from credflow.services.secrets import poller, worker
from credflow.settings import Settings
from credflow.web import routes as web

API_PREFIX = "/api/v1"
ROUTERS = [
    users.router, identity.router, passwords.router, secret_stores.router, store_kinds.router, variables.router,
    credentials.router, sharing.router, teams.router, audit.router,
    machines.router, agent.router, desktop_flows.router, connections.router, runs.router, cloud_flows.router,
    solutions.router, rotation.router, events.api_router, health.router,
]
ROOT_ROUTERS = [events.router]  # outside /api/v1: the Event Grid webhook

# Background work started with the app: each is ``start(core) -> stop``; ``stop`` lets the current step end
# (``lifecycle`` stops them at the first sign of a shutdown).
BACKGROUND: list[Callable[[Core], Callable[[], Any]]] = [scheduler.start, worker.start, poller.start,
                                                        hook_delivery.start]


def create_app(settings: Settings | None = None, core: Core | None = None) -> FastAPI:
    settings = settings or Settings()
    core = core or build_core(settings)

    lifespan = lifecycle.lifespan(core, BACKGROUND if settings.run_workers else [])
    app = FastAPI(title="credflow", version=__version__, lifespan=lifespan,
                  description="Self-hosted credentials service for automation.")
    app.state.core = core
    errors.install(app)
    install_limits(app, API_PREFIX)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in ROOT_ROUTERS:
        app.include_router(router)
    web.install(app)  # the pages at /

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    observability.install(app)  # /metrics, and request ids, metrics and access lines for every request
    route_index.install(app)  # last: it indexes the routes added so far
    return app
