"""Dependencies as aliases, so handlers read like declarations."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from credflow.services.authz import authenticate
from credflow.services.core import Actor, Core


def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def get_actor(request: Request) -> Actor:
    core: Core = request.app.state.core
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    with core.db.read() as s:
        return authenticate(s, token.strip() if scheme.lower() == "bearer" else None)


CoreDep = Annotated[Core, Depends(get_core)]
ActorDep = Annotated[Actor, Depends(get_actor)]
