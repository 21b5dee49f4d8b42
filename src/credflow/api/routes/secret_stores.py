from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import (
    Page,
    SecretPublic,
    SecretStorePublic,
    SecretVersionPublic,
    StoreAccessPublic,
    StoreCheckReport,
)
from credflow.api.paging import Limit
from credflow.api.schemas import SecretPut, StoreAccessSet, StoreCreate, StoreUpdate
from credflow.services.secrets import secret_stores, store_checks

router = APIRouter(prefix="/environments/{env}/secret-stores", tags=["secret stores"],
                   responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=SecretStorePublic, responses=problem_responses(400, 409))
def create_store(env: str, body: StoreCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return secret_stores.create_store(core, actor, env, body.name, body.kind, body.vault_url, body.config)


@router.get("", response_model=Page[SecretStorePublic], responses=problem_responses(400))
def list_stores(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                ) -> dict[str, Any]:
    return secret_stores.list_stores(core, actor, env, limit=limit, cursor=cursor)


@router.get("/{store}", response_model=SecretStorePublic)
def get_store(env: str, store: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return secret_stores.get_store(core, actor, env, store)


@router.patch("/{store}", response_model=SecretStorePublic, responses=problem_responses(400, 409))
def update_store(env: str, store: str, body: StoreUpdate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return secret_stores.update_store(core, actor, env, store, name=body.name, vault_url=body.vault_url,
                                      config=body.config, kind=body.kind)


@router.delete("/{store}", status_code=204, responses=problem_responses(409))
def delete_store(env: str, store: str, core: CoreDep, actor: ActorDep) -> Response:
    secret_stores.delete_store(core, actor, env, store)
    return Response(status_code=204)


@router.post("/{store}/access", response_model=StoreAccessPublic, responses=problem_responses(400))
def set_access(env: str, store: str, body: StoreAccessSet, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return secret_stores.set_access(core, actor, env, store, body.principal, body.allowed)


@router.put("/{store}/secrets/{name:path}", response_model=SecretVersionPublic, responses=problem_responses(400))
def put_secret(env: str, store: str, name: str, body: SecretPut, core: CoreDep, actor: ActorDep
               ) -> dict[str, Any]:
    return secret_stores.put_secret(core, actor, env, store, name, body.value, body.expires_at)


@router.get("/{store}/secrets", response_model=Page[SecretPublic])
def list_secrets(env: str, store: str, core: CoreDep, actor: ActorDep, limit: Limit = 50,
                 cursor: str | None = None) -> dict[str, Any]:
    return secret_stores.list_secrets(core, actor, env, store, limit=limit, cursor=cursor)


@router.post("/{store}/check", response_model=StoreCheckReport)
def check_store(env: str, store: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return store_checks.check_store(core, actor, env, store)
