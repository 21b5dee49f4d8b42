from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import SharePage, SharePublic
from credflow.api.paging import Limit
from credflow.api.schemas import Body
from credflow.services.catalog import sharing

router = APIRouter(prefix="/environments/{env}/credentials/{cred}/shares", tags=["sharing"],
                   responses=problem_responses(401, 403, 404, 422))


class ShareSet(Body):
    role: str


@router.get("", response_model=SharePage, responses=problem_responses(400))
def list_shares(env: str, cred: str, core: CoreDep, actor: ActorDep, limit: Limit = 50,
                cursor: str | None = None) -> dict[str, Any]:
    return sharing.list_shares(core, actor, env, cred, limit, cursor)


@router.put("/{principal}", response_model=SharePublic, responses=problem_responses(400))
def share(env: str, cred: str, principal: str, body: ShareSet, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return sharing.share(core, actor, env, cred, principal, body.role)


@router.delete("/{principal}", status_code=204)
def unshare(env: str, cred: str, principal: str, core: CoreDep, actor: ActorDep) -> Response:
    sharing.unshare(core, actor, env, cred, principal)
    return Response(status_code=204)
