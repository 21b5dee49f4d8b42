"""Who a sharing principal is: a user id or email of the caller's organization, or a team id of the
environment."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.domain.errors import NotFound
from credflow.persistence.tables import Team
from credflow.services import lookup
from credflow.services.core import Actor


def resolve_principal(s: Session, actor: Actor, env_id: str, principal: str) -> tuple[str, str]:
    user = lookup.user_by_id_or_email(s, principal)
    if user is not None and user.org_id == actor.org_id:
        return user.id, "user"
    team = s.get(Team, principal)
    if team is None:
        team = s.scalar(select(Team).where(Team.env_id == env_id, Team.name == principal))
    if team is not None and team.env_id == env_id:
        return team.id, "team"
    raise NotFound(f"principal {principal!r} not found", code="principal_not_found")
