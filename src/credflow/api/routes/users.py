from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import (
    EnvironmentPublic,
    EnvironmentWithRole,
    MachineIdentity,
    Page,
    UserCreated,
    UserPublic,
)
from credflow.api.models.access import Reassigned
from credflow.api.paging import Limit
from credflow.api.schemas import Body, EnvironmentCreate, UserCreate
from credflow.services.access import users

# Every operation here needs a user token (401 without one; 403 with a machine's) but /me, which a machine may call.
router = APIRouter(tags=["users and environments"], responses=problem_responses(401))
USER_ONLY = problem_responses(403, 422)
USER_LIST = problem_responses(400, 403, 422)  # 400: a cursor the list did not give


@router.post("/users", status_code=201, response_model=UserCreated,
             responses=problem_responses(400, 403, 404, 409, 422))
def create_user(body: UserCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.create_user(core, actor, body.name, body.email, body.environment_roles,
                             body.organization_admin)


class UserUpdate(Body):
    disabled: bool | None = Field(default=None, description="true: every token and session of the user answers 401")
    organization_admin: bool | None = None
    environment_roles: dict[str, str | None] | None = Field(
        default=None, description="environment id or name -> role, or null to take the role away")


class Reassign(Body):
    from_user: str = Field(min_length=1, max_length=320, description="user id or email (may be a removed user)")
    to_user: str = Field(min_length=1, max_length=320, description="user id or email, with a role here")


@router.get("/users", response_model=Page[UserPublic], responses=USER_LIST)
def list_users(core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None,
               include_removed: bool = False) -> dict[str, Any]:
    return users.list_users(core, actor, include_removed, limit=limit, cursor=cursor)


@router.get("/users/{user_id}", response_model=UserPublic, responses=problem_responses(403, 404, 422))
def get_user(user_id: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.get_user(core, actor, user_id)


@router.patch("/users/{user_id}", response_model=UserPublic, responses=problem_responses(400, 403, 404, 409, 422))
def update_user(user_id: str, body: UserUpdate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.update_user(core, actor, user_id, disabled=body.disabled, organization_admin=body.organization_admin,
                             environment_roles=body.environment_roles)


@router.delete("/users/{user_id}", status_code=204, responses=problem_responses(403, 404, 409, 422))
def remove_user(user_id: str, core: CoreDep, actor: ActorDep) -> Response:
    users.remove_user(core, actor, user_id)
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic | MachineIdentity)
async def me(core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    # A machine's answer needs no database: it is given without a hop to a worker thread.
    return users.me(core, actor) if actor.kind == "machine" else await run_in_threadpool(users.me, core, actor)


@router.post("/environments", status_code=201, response_model=EnvironmentPublic,
             responses=problem_responses(400, 403, 409, 422))
def create_environment(body: EnvironmentCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.create_environment(core, actor, body.name)


@router.get("/environments", response_model=Page[EnvironmentPublic], responses=USER_LIST)
def list_environments(core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                      ) -> dict[str, Any]:
    return users.list_environments(core, actor, limit=limit, cursor=cursor)


@router.get("/environments/{env}", response_model=EnvironmentWithRole, responses=problem_responses(403, 404, 422))
def get_environment(env: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.get_environment(core, actor, env)


@router.post("/environments/{env}/reassign", response_model=Reassigned,
             responses=problem_responses(400, 403, 404, 422))
def reassign(env: str, body: Reassign, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.reassign(core, actor, env, body.from_user, body.to_user)
