from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.machine_schemas import DesktopFlowCreate, DesktopFlowUpdate
from credflow.api.models import DesktopFlowPublic, Page
from credflow.api.paging import Limit
from credflow.services.automation import desktop_flows

router = APIRouter(prefix="/environments/{env}/desktop-flows", tags=["desktop flows"],
                   responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=DesktopFlowPublic, responses=problem_responses(400, 409))
def create_desktop_flow(env: str, body: DesktopFlowCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return desktop_flows.create_desktop_flow(core, actor, env, body.name, body.command, solution=body.solution)


@router.get("", response_model=Page[DesktopFlowPublic], responses=problem_responses(400))
def list_desktop_flows(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                       ) -> dict[str, Any]:
    return desktop_flows.list_desktop_flows(core, actor, env, limit=limit, cursor=cursor)


@router.get("/{flow}", response_model=DesktopFlowPublic)
def get_desktop_flow(env: str, flow: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return desktop_flows.get_desktop_flow(core, actor, env, flow)


@router.patch("/{flow}", response_model=DesktopFlowPublic, responses=problem_responses(400, 409))
def update_desktop_flow(env: str, flow: str, body: DesktopFlowUpdate, core: CoreDep, actor: ActorDep
                        ) -> dict[str, Any]:
    return desktop_flows.update_desktop_flow(core, actor, env, flow, name=body.name, command=body.command)


@router.delete("/{flow}", status_code=204, responses=problem_responses(409))
def delete_desktop_flow(env: str, flow: str, core: CoreDep, actor: ActorDep) -> Response:
    desktop_flows.delete_desktop_flow(core, actor, env, flow)
    return Response(status_code=204)
