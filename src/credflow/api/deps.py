"""Dependencies as aliases, so handlers read like declarations."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from credflow.domain.errors import Unauthenticated
from credflow.services.access.audit_log import record_failed_sign_in
from credflow.services.access.authz import authenticate
from credflow.services.core import Actor, Core


def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


# Declares the bearer token in /openapi.json; it refuses nothing itself (get_actor reads the header and answers
# 401 as problem details).
BEARER = HTTPBearer(auto_error=False, scheme_name="token",
                    description="A user's API token, or a machine's token for the /machines/me operations.")


def get_actor(request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Actor:
    core: Core = request.app.state.core
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    try:
        with core.db.read() as s:
            return authenticate(s, bearer)
    except Unauthenticated:
        if bearer:  # a token that matched nobody: a failed sign-in (the token itself is never kept)
            record_failed_sign_in(core, request.url.path, request.path_params.get("env"),
                                  request.client.host if request.client else None)
        raise


CoreDep = Annotated[Core, Depends(get_core)]
ActorDep = Annotated[Actor, Depends(get_actor)]
