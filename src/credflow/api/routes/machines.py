from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.machine_schemas import GroupCreate, GroupUpdate, MachineUpdate, RegistrationCreate
from credflow.api.models import MachineDetail, MachineGroupPublic, MachinePublic, Page, Registration
from credflow.api.paging import Limit
from credflow.services.automation import machines

router = APIRouter(prefix="/environments/{env}", tags=["machines"], responses=problem_responses(401, 403, 404, 422))


@router.post("/machine-registrations", status_code=201, response_model=Registration,
             responses=problem_responses(400))
def create_registration(env: str, core: CoreDep, actor: ActorDep, body: RegistrationCreate | None = None
                        ) -> dict[str, Any]:
    return machines.create_registration(core, actor, env, body.expires_in_seconds if body else None)


@router.get("/machines", response_model=Page[MachinePublic], responses=problem_responses(400))
def list_machines(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                  ) -> dict[str, Any]:
    return machines.list_machines(core, actor, env, limit=limit, cursor=cursor)


@router.get("/machines/{machine}", response_model=MachineDetail)
def get_machine(env: str, machine: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return machines.get_machine(core, actor, env, machine)


@router.patch("/machines/{machine}", response_model=MachinePublic, responses=problem_responses(400, 409))
def update_machine(env: str, machine: str, body: MachineUpdate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return machines.update_machine(core, actor, env, machine, name=body.name, disabled=body.disabled)


@router.delete("/machines/{machine}", status_code=204)
def delete_machine(env: str, machine: str, core: CoreDep, actor: ActorDep) -> Response:
    machines.delete_machine(core, actor, env, machine)
    return Response(status_code=204)


@router.post("/machine-groups", status_code=201, response_model=MachineGroupPublic,
             responses=problem_responses(400, 409))
def create_group(env: str, body: GroupCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return machines.create_group(core, actor, env, body.name, body.machines)


@router.get("/machine-groups", response_model=Page[MachineGroupPublic], responses=problem_responses(400))
def list_groups(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                ) -> dict[str, Any]:
    return machines.list_groups(core, actor, env, limit=limit, cursor=cursor)


@router.get("/machine-groups/{group}", response_model=MachineGroupPublic)
def get_group(env: str, group: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return machines.get_group(core, actor, env, group)


@router.patch("/machine-groups/{group}", response_model=MachineGroupPublic, responses=problem_responses(400, 409))
def update_group(env: str, group: str, body: GroupUpdate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return machines.update_group(core, actor, env, group, body.name, body.machines)


@router.delete("/machine-groups/{group}", status_code=204)
def delete_group(env: str, group: str, core: CoreDep, actor: ActorDep) -> Response:
    machines.delete_group(core, actor, env, group)
    return Response(status_code=204)
