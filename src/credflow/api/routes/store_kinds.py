"""``GET /secret-store-kinds``: the kinds of secret store this server can open, for any signed-in user."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from credflow.api.deps import ActorDep, CoreDep
from credflow.services.secrets import store_kinds

router = APIRouter(tags=["secret stores"])


class StoreKindPublic(BaseModel):
    kind: str
    viable: bool
    detail: str | None = Field(description="why the kind cannot be used here; null when it can")
    install: str | None = Field(description="the command that makes the kind usable, when one does")
    config_schema: dict[str, Any] | None = Field(
        description="the JSON schema of the kind's config, secret fields marked writeOnly; null when its plugin "
                    "could not be loaded")


class StoreKindList(BaseModel):
    items: list[StoreKindPublic]
    next_cursor: str | None = Field(description="always null: every kind fits on one page")


@router.get("/secret-store-kinds", response_model=StoreKindList)
def list_store_kinds(core: CoreDep, actor: ActorDep) -> StoreKindList:
    kinds = store_kinds.list_kinds(core, actor)
    return StoreKindList(items=[StoreKindPublic(**asdict(k)) for k in kinds], next_cursor=None)
