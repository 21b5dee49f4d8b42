from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import Page, TeamPublic
from credflow.api.paging import Limit
from credflow.api.schemas import Body
from credflow.services.access import teams

router = APIRouter(prefix="/environments/{env}/teams", tags=["teams"],
                   responses=problem_responses(401, 403, 404, 422))


class TeamCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    members: list[str] = Field(default_factory=list)


@router.post("", status_code=201, response_model=TeamPublic, responses=problem_responses(400, 409))
def create_team(env: str, body: TeamCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return teams.create_team(core, actor, env, body.name, body.members)


@router.get("", response_model=Page[TeamPublic], responses=problem_responses(400))
def list_teams(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
               ) -> dict[str, Any]:
    return teams.list_teams(core, actor, env, limit=limit, cursor=cursor)


@router.get("/{team}", response_model=TeamPublic)
def get_team(env: str, team: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return teams.get_team(core, actor, env, team)


@router.put("/{team}/members/{user}", response_model=TeamPublic)
def add_member(env: str, team: str, user: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return teams.add_member(core, actor, env, team, user)


@router.delete("/{team}/members/{user}", status_code=204)
def remove_member(env: str, team: str, user: str, core: CoreDep, actor: ActorDep) -> Response:
    teams.remove_member(core, actor, env, team, user)
    return Response(status_code=204)


@router.delete("/{team}", status_code=204)
def delete_team(env: str, team: str, core: CoreDep, actor: ActorDep) -> Response:
    teams.delete_team(core, actor, env, team)
    return Response(status_code=204)
