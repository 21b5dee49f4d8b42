from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import VariableDependencies, VariablePage, VariablePublic
from credflow.api.paging import Limit
from credflow.api.schemas import VariableCreate, VariableUpdate
from credflow.services.catalog import dependencies, variables

router = APIRouter(prefix="/environments/{env}/environment-variables", tags=["environment variables"],
                   responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=VariablePublic, responses=problem_responses(400, 409))
def create_variable(env: str, body: VariableCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return variables.create_variable(core, actor, env, body.schema_name, body.display_name, body.type,
                                     body.value, body.secret_reference, solution=body.solution)


@router.get("", response_model=VariablePage, responses=problem_responses(400))
def list_variables(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                   ) -> dict[str, Any]:
    return variables.list_variables(core, actor, env, limit=limit, cursor=cursor)


@router.get("/{var}", response_model=VariablePublic)
def get_variable(env: str, var: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return variables.get_variable(core, actor, env, var)


@router.patch("/{var}", response_model=VariablePublic, responses=problem_responses(400))
def update_variable(env: str, var: str, body: VariableUpdate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return variables.update_variable(core, actor, env, var, body.model_dump(exclude_unset=True))


@router.delete("/{var}", status_code=204, responses=problem_responses(409))
def delete_variable(env: str, var: str, core: CoreDep, actor: ActorDep) -> Response:
    variables.delete_variable(core, actor, env, var)
    return Response(status_code=204)


@router.get("/{var}/dependencies", response_model=VariableDependencies, responses=problem_responses(400))
def variable_dependencies(env: str, var: str, core: CoreDep, actor: ActorDep, limit: Limit = 50,
                          cursor: str | None = None) -> dict[str, Any]:
    return dependencies.variable_dependencies(core, actor, env, var, limit, cursor)
