"""Dependencies as aliases, so handlers read like declarations.

``get_core`` and ``get_actor`` are coroutines: a dependency declared with ``def`` would cost every request a hop
to a worker thread and back. ``get_actor`` answers from the event loop when this process remembers the token
(``services.access.principal_cache``) and reads the database in a worker thread only when it does not.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from credflow.services.access import failed_auth, tokens
from credflow.services.access.authz import token_hash
from credflow.services.core import Actor, Core


async def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


# Declares the bearer token in /openapi.json; it refuses nothing itself (get_actor reads the header and answers
# 401 as problem details).
BEARER = HTTPBearer(auto_error=False, scheme_name="token",
                    description="A user's API token, or a machine's token for the /machines/me operations.")


def client_address(request: Request) -> str:
    """The caller's address, as uvicorn saw it (behind a trusted proxy: the one it forwarded for)."""
    return request.client.host if request.client else "unknown"


def bearer_of(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def get_actor(request: Request,
                    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Actor:
    core: Core = request.app.state.core
    bearer = bearer_of(request)
    if not bearer:  # no token: 401, and no attempt to count
        return tokens.authenticate(core, None)
    digest = token_hash(bearer)
    # A token that matches nobody is a failed sign-in (the token itself is never kept); too many from one
    # address and it is locked out (429), a token this process remembers included.
    remembered = tokens.remembered(core, digest)

    def attempt() -> Actor:
        return failed_auth.attempt(
            core, client_address(request), bearer,
            (lambda: remembered) if remembered is not None else (lambda: tokens.authenticate(core, bearer, digest)),
            reason="invalid_token", path=request.scope["path"], env_ref=request.path_params.get("env"), digest=digest)

    return attempt() if remembered is not None else await run_in_threadpool(attempt)

CoreDep = Annotated[Core, Depends(get_core)]
ActorDep = Annotated[Actor, Depends(get_actor)]
