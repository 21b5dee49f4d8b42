"""Teams: named groups of users of one environment that credentials (and secret stores) are shared with.

What a user holds through a team ends the moment the user leaves it: authorization reads membership on every
request, and the connections that relied on it are re-checked in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, NotFound, RuleViolation
from credflow.domain.names import check_name
from credflow.persistence.tables import (
    CredentialShare,
    Environment,
    StoreAccess,
    Team,
    TeamMember,
    User,
    VariableGrant,
)
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.access.connection_access import refresh_access, refresh_principal
from credflow.services.core import Actor, Core


def find_team(s: Session, env_id: str, ref: str) -> Team:
    return lookup.find_in_env(s, Team, env_id, ref, "team", "team_not_found")


def _member(s: Session, env: Environment, ref: str) -> User:
    """A user of the environment's organization, by id or email, who has a role in the environment."""
    user = lookup.user_by_id_or_email(s, ref)
    if user is None or user.org_id != env.org_id:
        raise NotFound(f"user {ref!r} not found", code="user_not_found")
    if authz.env_role(s, Actor(kind="user", id=user.id, org_id=env.org_id), env.id) is None:
        raise RuleViolation(f"user {ref!r} has no role in this environment", code="not_in_environment")
    return user


def _view(s: Session, team: Team) -> dict[str, Any]:
    members = s.scalars(select(User).join(TeamMember, TeamMember.user_id == User.id)
                        .where(TeamMember.team_id == team.id).order_by(User.id)).all()
    return {"id": team.id, "name": team.name, "environment": team.env_id,
            "members": [{"id": u.id, "name": u.name, "email": u.email} for u in members],
            "created_at": views.ts(team.created_at)}


def create_team(core: Core, actor: Actor, env_id: str, name: str, members: list[str]) -> dict[str, Any]:
    name = check_name(name, "team", count_blanks=False)
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "team.write")
        if s.scalar(select(Team.id).where(Team.env_id == env.id, Team.name == name)):
            raise Conflict(f"a team named {name!r} exists in this environment", code="duplicate_name")
        users = {u.id: u for u in (_member(s, env, ref) for ref in members)}
        team = Team(env_id=env.id, name=name)
        s.add(team)
        s.flush()
        s.add_all(TeamMember(team_id=team.id, user_id=uid) for uid in users)
        s.flush()
        record(s, actor=actor.label, action="team.create", env_id=env.id, object_type="team", object_id=team.id,
               detail={"name": name, "members": sorted(users)})
        return _view(s, team)


def list_teams(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
               ) -> dict[str, Any]:
    """One page of the environment's teams, in the order they were made, each with its members."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "team.read")
        return lookup.seek(s, select(Team).where(Team.env_id == env.id), Team.id, limit=limit, cursor=cursor,
                           view=lambda t: _view(s, t))


def page_teams(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's teams, searched by name, sorted by name or creation."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "team.read")
        return lookup.page(s, select(Team).where(Team.env_id == env.id), listing, search=[Team.name], key=Team.id,
                           view=lambda t: _view(s, t), sorts={"name": Team.name, "created": Team.created_at})


def get_team(core: Core, actor: Actor, env_id: str, team_ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "team.read")
        return _view(s, find_team(s, env.id, team_ref))


def add_member(core: Core, actor: Actor, env_id: str, team_ref: str, user_ref: str) -> dict[str, Any]:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "team.write")
        team = find_team(s, env.id, team_ref)
        user = _member(s, env, user_ref)
        if s.get(TeamMember, (team.id, user.id)) is None:
            s.add(TeamMember(team_id=team.id, user_id=user.id))
            s.flush()
            changed = refresh_principal(s, team.id)
            record(s, actor=actor.label, action="team.member_add", env_id=env.id, object_type="team",
                   object_id=team.id, detail={"user": user.id, "connections_changed": changed})
        return _view(s, team)


def remove_member(core: Core, actor: Actor, env_id: str, team_ref: str, user_ref: str) -> None:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "team.write")
        team = find_team(s, env.id, team_ref)
        user = lookup.user_by_id_or_email(s, user_ref)
        row = s.get(TeamMember, (team.id, user.id)) if user is not None else None
        if user is None or row is None:
            raise NotFound(f"user {user_ref!r} is not a member of team {team.name!r}", code="member_not_found")
        s.delete(row)
        s.flush()
        changed = refresh_principal(s, team.id)
        record(s, actor=actor.label, action="team.member_remove", env_id=env.id, object_type="team",
               object_id=team.id, detail={"user": user.id, "connections_changed": changed})


def delete_team(core: Core, actor: Actor, env_id: str, team_ref: str) -> None:
    """Delete a team with everything granted to it: its credential shares, store access and variable reads."""
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "team.write")
        team = find_team(s, env.id, team_ref)
        cred_ids = s.scalars(select(CredentialShare.credential_id)
                             .where(CredentialShare.principal_id == team.id)).all()
        s.execute(delete(CredentialShare).where(CredentialShare.principal_id == team.id))
        s.execute(delete(StoreAccess).where(StoreAccess.principal_id == team.id))
        s.execute(delete(VariableGrant).where(VariableGrant.principal_id == team.id))
        s.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
        s.delete(team)
        s.flush()
        changed = [conn for cid in cred_ids for conn in refresh_access(s, cid)]
        record(s, actor=actor.label, action="team.delete", env_id=env.id, object_type="team", object_id=team.id,
               detail={"name": team.name, "credentials": list(cred_ids), "connections_changed": changed})
