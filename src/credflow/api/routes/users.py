from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.paging import Limit, page
from credflow.api.schemas import EnvironmentCreate, UserCreate
from credflow.services.access import users

router = APIRouter(tags=["users and environments"])


@router.post("/users", status_code=201)
def create_user(body: UserCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.create_user(core, actor, body.name, body.email, body.environment_roles,
                             body.organization_admin)


@router.get("/users")
def list_users(core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None) -> dict[str, Any]:
    return page(users.list_users(core, actor), limit, cursor)


@router.get("/users/{user_id}")
def get_user(user_id: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.get_user(core, actor, user_id)


@router.get("/me")
def me(core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.me(core, actor)


@router.post("/environments", status_code=201)
def create_environment(body: EnvironmentCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.create_environment(core, actor, body.name)


@router.get("/environments")
def list_environments(core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                      ) -> dict[str, Any]:
    return page(users.list_environments(core, actor), limit, cursor)


@router.get("/environments/{env}")
def get_environment(env: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return users.get_environment(core, actor, env)
