"""Identity: personal access tokens (one's own, and those of the users one manages), the machine's own token, and
the CLI's sign-in through the identity provider (device authorization)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from credflow.api.deps import ActorDep, CoreDep, client_address
from credflow.api.errors import problem_responses
from credflow.api.models.access import (
    DeviceLogin,
    DevicePending,
    DeviceToken,
    MachineToken,
    TokenCreated,
    TokenPublic,
)
from credflow.api.models.common import Page
from credflow.api.paging import Limit
from credflow.api.schemas import Body
from credflow.domain.errors import NotFound
from credflow.services.access import failed_auth, sso, tokens
from credflow.services.core import Core

router = APIRouter(tags=["identity"], responses=problem_responses(401))


class TokenCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    expires_in_days: int | None = Field(default=None, ge=1, le=tokens.MAX_DAYS,
                                        description=f"default {tokens.DEFAULT_DAYS}, at most {tokens.MAX_DAYS}")


@router.post("/me/tokens", status_code=201, response_model=TokenCreated, responses=problem_responses(400, 403, 422))
def create_token(body: TokenCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return tokens.create_mine(core, actor, body.name, body.expires_in_days)


@router.get("/me/tokens", response_model=Page[TokenPublic], responses=problem_responses(400, 403, 422))
def list_my_tokens(core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None) -> dict[str, Any]:
    return tokens.list_tokens(core, actor, limit=limit, cursor=cursor)


@router.delete("/me/tokens/{token_id}", status_code=204, responses=problem_responses(403, 404))
def revoke_my_token(token_id: str, core: CoreDep, actor: ActorDep) -> Response:
    tokens.revoke(core, actor, token_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/tokens", response_model=Page[TokenPublic],
             responses=problem_responses(400, 403, 404, 422))
def list_user_tokens(user_id: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                     ) -> dict[str, Any]:
    return tokens.list_tokens(core, actor, user_id, limit=limit, cursor=cursor)


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=204, responses=problem_responses(403, 404))
def revoke_user_token(user_id: str, token_id: str, core: CoreDep, actor: ActorDep) -> Response:
    tokens.revoke(core, actor, token_id, user_id)
    return Response(status_code=204)


@router.post("/machines/me/token", response_model=MachineToken, tags=["machine agent"],
             responses=problem_responses(403))
def rotate_machine_token(core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return tokens.rotate_machine_token(core, actor)


# --- the CLI signs in through the identity provider (RFC 8628) --------------------------------------------------
class DeviceTokenPoll(Body):
    handle: str = Field(min_length=1, max_length=200)


def _sso(core: Core) -> None:
    if not sso.enabled(core.settings):
        raise NotFound("single sign-on is not set up on this server", code="sso_not_configured")


@router.post("/auth/device", response_model=DeviceLogin, tags=["identity"],
             responses=problem_responses(400, 404, 422, 503))
def device_start(request: Request, core: CoreDep) -> dict[str, Any]:
    """Start a sign-in through the identity provider for a CLI; no token needed."""
    _sso(core)
    return sso.begin_device(core, client_address(request))


@router.post("/auth/device/token", response_model=DeviceToken, tags=["identity"],
             responses={202: {"description": "the person has not signed in yet: poll again after the interval",
                              "model": DevicePending}, **problem_responses(400, 404, 422, 429, 503)})
def device_token(request: Request, body: DeviceTokenPoll, core: CoreDep) -> Any:
    """A credflow token once the person has signed in at the provider (401 ``sso_refused`` when refused or too
    late)."""
    _sso(core)
    got = failed_auth.attempt(core, client_address(request), body.handle,
                              lambda: sso.poll_device(core, body.handle, client_address(request)),
                              reason="invalid_device_handle", path=request.url.path)
    if got is None:
        return JSONResponse({"status": "authorization_pending"}, status_code=202)
    return got
