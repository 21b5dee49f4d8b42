"""Rotation: the seed's NotifyEnvironmentVariableSecretChange action, event keys, and what rotation holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import Accepted, EventKeyCreated, EventKeyPublic, Page, RotationStatus
from credflow.api.paging import Limit
from credflow.api.schemas import Body
from credflow.services.secrets import event_keys, rotation

router = APIRouter(prefix="/environments/{env}", tags=["rotation"], responses=problem_responses(401, 403, 404, 422))


class SecretChangeNotice(Body):
    """The Dataverse action's parameters, spelled as the seed spells them."""

    KeyVaultUrl: str = Field(min_length=1, max_length=1000)
    SecretName: str = Field(min_length=1, max_length=500)


@router.post("/actions/NotifyEnvironmentVariableSecretChange", status_code=202, response_model=Accepted,
             responses=problem_responses(400))
def notify_secret_change(env: str, body: SecretChangeNotice, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return rotation.notify(core, actor, env, body.KeyVaultUrl, body.SecretName)


@router.post("/event-keys", status_code=201, response_model=EventKeyCreated)
def create_event_key(env: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return event_keys.create_key(core, actor, env)


@router.get("/event-keys", response_model=Page[EventKeyPublic], responses=problem_responses(400))
def list_event_keys(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                    ) -> dict[str, Any]:
    return event_keys.list_keys(core, actor, env, limit=limit, cursor=cursor)


@router.delete("/event-keys/{key_id}", status_code=204)
def delete_event_key(env: str, key_id: str, core: CoreDep, actor: ActorDep) -> Response:
    event_keys.delete_key(core, actor, env, key_id)
    return Response(status_code=204)


@router.get("/rotation", response_model=RotationStatus)
def rotation_status(env: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return rotation.status(core, actor, env)
