from __future__ import annotations

from typing import Any

from fastapi import APIRouter

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
from credflow.api.paging import Limit, page
from credflow.api.schemas import EnvironmentCreate, UserCreate
from credflow.services.access import users

# Every operation here needs a user token (401 without one; 403 with a machine's) but /me, which a machine may call.
router = APIRouter(tags=["users and environments"], responses=problem_responses(401))
USER_ONLY = problem_responses(403, 422)


@router.post("/users", status_code=201, response_model=UserCreated,
             responses=problem_responses(400, 403, 404, 409, 422))
def create_user(body: UserCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.create_user(core, actor, body.name, body.email, body.environment_roles,
                             body.organization_admin)


@router.get("/users", response_model=Page[UserPublic], responses=USER_ONLY)
def list_users(core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None) -> dict[str, Any]:
    return page(users.list_users(core, actor), limit, cursor)


@router.get("/users/{user_id}", response_model=UserPublic, responses=problem_responses(403, 404, 422))
def get_user(user_id: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.get_user(core, actor, user_id)


@router.get("/me", response_model=UserPublic | MachineIdentity)
def me(core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.me(core, actor)


@router.post("/environments", status_code=201, response_model=EnvironmentPublic,
             responses=problem_responses(400, 403, 409, 422))
def create_environment(body: EnvironmentCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.create_environment(core, actor, body.name)


@router.get("/environments", response_model=Page[EnvironmentPublic], responses=USER_ONLY)
def list_environments(core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                      ) -> dict[str, Any]:
    return page(users.list_environments(core, actor), limit, cursor)


@router.get("/environments/{env}", response_model=EnvironmentWithRole, responses=problem_responses(403, 404, 422))
def get_environment(env: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.get_environment(core, actor, env)
