"""Dependencies as aliases, so handlers read like declarations."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from credflow.services.access import failed_auth, tokens
from credflow.services.core import Actor, Core


def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


# Declares the bearer token in /openapi.json; it refuses nothing itself (get_actor reads the header and answers
# 401 as problem details).
BEARER = HTTPBearer(auto_error=False, scheme_name="token",
                    description="A user's API token, or a machine's token for the /machines/me operations.")


def client_address(request: Request) -> str:
    """The caller's address, as uvicorn saw it (behind a trusted proxy: the one it forwarded for)."""
    return request.client.host if request.client else "unknown"


def _authenticate(core: Core, bearer: str | None) -> Actor:
    return tokens.authenticate(core, bearer)


def get_actor(request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Actor:
    core: Core = request.app.state.core
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    if not bearer:  # no token: 401, and no attempt to count
        return _authenticate(core, None)
    # A token that matches nobody is a failed sign-in (the token itself is never kept); too many from one
    # address and it is locked out (429).
    return failed_auth.attempt(core, client_address(request), bearer, lambda: _authenticate(core, bearer),
                               reason="invalid_token", path=request.url.path, env_ref=request.path_params.get("env"))


CoreDep = Annotated[Core, Depends(get_core)]
ActorDep = Annotated[Actor, Depends(get_actor)]
