from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.machine_schemas import CloudFlowCreate, ReferenceCreate, ReferenceUpdate
from credflow.api.models import CloudFlowPublic, CloudFlowRun, ConnectionReferencePublic, Page
from credflow.api.paging import Limit
from credflow.services.automation import cloud_flows

router = APIRouter(prefix="/environments/{env}", tags=["cloud flows"], responses=problem_responses(401, 403, 404, 422))


@router.post("/connection-references", status_code=201, response_model=ConnectionReferencePublic,
             responses=problem_responses(400, 409))
def create_reference(env: str, body: ReferenceCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return cloud_flows.create_reference(core, actor, env, body.name, body.connection)


@router.get("/connection-references", response_model=Page[ConnectionReferencePublic],
             responses=problem_responses(400))
def list_references(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                    ) -> dict[str, Any]:
    return cloud_flows.list_references(core, actor, env, limit=limit, cursor=cursor)


@router.get("/connection-references/{ref}", response_model=ConnectionReferencePublic)
def get_reference(env: str, ref: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return cloud_flows.get_reference(core, actor, env, ref)


@router.patch("/connection-references/{ref}", response_model=ConnectionReferencePublic,
              responses=problem_responses(400, 409))
def bind_reference(env: str, ref: str, body: ReferenceUpdate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return cloud_flows.bind_reference(core, actor, env, ref, body.connection)


@router.delete("/connection-references/{ref}", status_code=204, responses=problem_responses(409))
def delete_reference(env: str, ref: str, core: CoreDep, actor: ActorDep) -> Response:
    cloud_flows.delete_reference(core, actor, env, ref)
    return Response(status_code=204)


@router.post("/cloud-flows", status_code=201, response_model=CloudFlowPublic,
             responses=problem_responses(400, 409))
def create_cloud_flow(env: str, body: CloudFlowCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return cloud_flows.create_cloud_flow(core, actor, env, body.name, body.trigger, body.actions,
                                         solution=body.solution)


@router.get("/cloud-flows", response_model=Page[CloudFlowPublic], responses=problem_responses(400))
def list_cloud_flows(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                     ) -> dict[str, Any]:
    return cloud_flows.list_cloud_flows(core, actor, env, limit=limit, cursor=cursor)


@router.get("/cloud-flows/{flow}", response_model=CloudFlowPublic)
def get_cloud_flow(env: str, flow: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return cloud_flows.get_cloud_flow(core, actor, env, flow)


@router.delete("/cloud-flows/{flow}", status_code=204)
def delete_cloud_flow(env: str, flow: str, core: CoreDep, actor: ActorDep) -> Response:
    cloud_flows.delete_cloud_flow(core, actor, env, flow)
    return Response(status_code=204)


@router.post("/cloud-flows/{flow}/run", status_code=201, response_model=CloudFlowRun)
def run_cloud_flow(env: str, flow: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return cloud_flows.run_cloud_flow(core, actor, env, flow)
