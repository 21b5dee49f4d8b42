"""Passwords for the web pages: a system administrator sets a first password; a user changes their own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import PasswordState
from credflow.api.schemas import Body
from credflow.services.access import passwords

router = APIRouter(tags=["passwords"], responses=problem_responses(400, 401, 403, 422))


class PasswordSet(Body):
    password: str = Field(max_length=passwords.MAX_LENGTH)


class PasswordChange(Body):
    current: str = Field(max_length=passwords.MAX_LENGTH)
    new: str = Field(max_length=passwords.MAX_LENGTH)


@router.post("/users/{user_id}/password", response_model=PasswordState, responses=problem_responses(404))
def set_password(user_id: str, body: PasswordSet, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return passwords.set_password(core, actor, user_id, body.password)


@router.post("/me/password", status_code=204)
def change_password(body: PasswordChange, core: CoreDep, actor: ActorDep) -> Response:
    passwords.change_password(core, actor, body.current, body.new)
    return Response(status_code=204)
