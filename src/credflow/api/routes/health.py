"""Credential health: ``GET /environments/{env}/health`` and the environment's notification hooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models.common import Page
from credflow.api.models.health import HealthReport, NotificationHookCreated, NotificationHookPublic
from credflow.api.paging import Limit
from credflow.api.schemas import Body
from credflow.services.automation import health, notification_hooks

router = APIRouter(prefix="/environments/{env}", tags=["health"], responses=problem_responses(401, 403, 404))


class HookCreate(Body):
    url: str = Field(min_length=1, max_length=2000, description="http or https; never a link-local address")
    min_severity: str = Field("warning", description="critical, warning or info: the least a finding must be")


@router.get("/health", response_model=HealthReport)
def get_health(env: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return health.findings(core, actor, env)


@router.post("/notification-hooks", status_code=201, response_model=NotificationHookCreated,
             responses=problem_responses(400, 422))
def create_hook(env: str, body: HookCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return notification_hooks.create_hook(core, actor, env, body.url, body.min_severity)


@router.get("/notification-hooks", response_model=Page[NotificationHookPublic], responses=problem_responses(400, 422))
def list_hooks(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
               ) -> dict[str, Any]:
    return notification_hooks.list_hooks(core, actor, env, limit, cursor)


@router.delete("/notification-hooks/{hook}", status_code=204)
def delete_hook(env: str, hook: str, core: CoreDep, actor: ActorDep) -> Response:
    notification_hooks.delete_hook(core, actor, env, hook)
    return Response(status_code=204)
