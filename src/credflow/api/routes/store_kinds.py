"""``GET /secret-store-kinds``: the kinds of secret store this server can open, for any signed-in user."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import StoreKindList, StoreKindPublic
from credflow.services.secrets import store_kinds

router = APIRouter(tags=["secret stores"])


@router.get("/secret-store-kinds", response_model=StoreKindList, responses=problem_responses(401, 403))
def list_store_kinds(core: CoreDep, actor: ActorDep) -> StoreKindList:
    kinds = store_kinds.list_kinds(core, actor)
    return StoreKindList(items=[StoreKindPublic(**asdict(k)) for k in kinds], next_cursor=None)
