from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.machine_schemas import ConnectionCreate, ConnectionUpdate
from credflow.api.models import ConnectionPublic, Page
from credflow.api.paging import Limit
from credflow.services.automation import connections

router = APIRouter(prefix="/environments/{env}/connections", tags=["connections"],
                   responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=ConnectionPublic, responses=problem_responses(400))
def create_connection(env: str, body: ConnectionCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return connections.create_connection(
        core, actor, env, body.name, body.target, body.credential,
        username=body.username.get_secret_value() if body.username is not None else None,
        password=body.password.get_secret_value() if body.password is not None else None)


@router.get("", response_model=Page[ConnectionPublic], responses=problem_responses(400))
def list_connections(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None,
                     credential: str | None = Query(None, description="A credential's id."),
                     status: str | None = Query(None, description="connected, access_revoked, credential_deleted "
                                                                  "or secret_unreadable."),
                     ) -> dict[str, Any]:
    return connections.list_connections(core, actor, env, credential=credential, status=status, limit=limit,
                                        cursor=cursor)


@router.get("/{connection}", response_model=ConnectionPublic, responses=problem_responses(409))
def get_connection(env: str, connection: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return connections.get_connection(core, actor, env, connection)


@router.patch("/{connection}", response_model=ConnectionPublic, responses=problem_responses(400, 409))
def update_connection(env: str, connection: str, body: ConnectionUpdate, core: CoreDep, actor: ActorDep
                      ) -> dict[str, Any]:
    return connections.update_connection(
        core, actor, env, connection, name=body.name, target=body.target, credential=body.credential,
        username=body.username.get_secret_value() if body.username is not None else None,
        password=body.password.get_secret_value() if body.password is not None else None)


@router.delete("/{connection}", status_code=204, responses=problem_responses(409))
def delete_connection(env: str, connection: str, core: CoreDep, actor: ActorDep) -> Response:
    connections.delete_connection(core, actor, env, connection)
    return Response(status_code=204)
