"""Bootstrap, users and environments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, Forbidden, NotFound, RuleViolation
from credflow.domain.roles import EnvironmentRole
from credflow.persistence.tables import Environment, EnvironmentRoleGrant, Organization, User
from credflow.services import authz, views
from credflow.services.core import Actor, Core, new_token


def bootstrap(core: Core, token: str | None) -> str | None:
    """On an empty database: the organization and environment ``default`` and the user ``admin``, System
    Administrator of every environment. Returns the admin token when credflow made it (shown once)."""
    with core.db.transaction() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return None
        made = token or new_token("cfu")
        org = Organization(name="default", tenant_id=core.settings.tenant_id)
        s.add(org)
        s.flush()
        env = Environment(org_id=org.id, name="default")
        admin = User(org_id=org.id, name="admin", email="admin@localhost", token_hash=authz.token_hash(made))
        s.add_all([env, admin])
        s.flush()
        s.add(EnvironmentRoleGrant(user_id=admin.id, env_id=env.id, role=EnvironmentRole.SYSTEM_ADMINISTRATOR))
        record(s, actor=f"user:{admin.id}", action="bootstrap", env_id=env.id, object_type="user",
               object_id=admin.id)
        return None if token else made


def _roles(s: Session, user_id: str) -> dict[str, str]:
    rows = s.execute(select(EnvironmentRoleGrant.env_id, EnvironmentRoleGrant.role)
                     .where(EnvironmentRoleGrant.user_id == user_id)).all()
    return {env: role for env, role in rows}


def _admin_envs(s: Session, actor: Actor) -> set[str]:
    return {e for e, r in _roles(s, actor.id).items() if r == EnvironmentRole.SYSTEM_ADMINISTRATOR}


def create_user(core: Core, actor: Actor, name: str, email: str, environment_roles: dict[str, str]
                ) -> dict[str, Any]:
    with core.db.transaction() as s:
        authz.require_user(actor)
        admin_of = _admin_envs(s, actor)
        if not admin_of:
            raise Forbidden("only system administrators create users")
        resolved: dict[str, str] = {}
        for env_ref, role in environment_roles.items():
            env, _ = authz.environment(s, actor, env_ref)
            if env.id not in admin_of:
                raise Forbidden(f"you are not a system administrator of environment {env_ref!r}")
            try:
                resolved[env.id] = EnvironmentRole(role).value
            except ValueError:
                raise RuleViolation(f"unknown environment role {role!r}", code="unknown_role",
                                    allowed=[r.value for r in EnvironmentRole]) from None
        if s.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
            raise Conflict(f"a user with email {email!r} exists", code="duplicate_email")
        token = new_token("cfu")
        user = User(org_id=actor.org_id, name=name, email=email, token_hash=authz.token_hash(token))
        s.add(user)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict(f"a user with email {email!r} exists", code="duplicate_email") from None
        for env_id, role in resolved.items():
            s.add(EnvironmentRoleGrant(user_id=user.id, env_id=env_id, role=role))
        record(s, actor=actor.label, action="user.create", object_type="user", object_id=user.id,
               detail={"email": email, "roles": resolved})
        return {**views.user(user, resolved), "token": token}


def list_users(core: Core, actor: Actor) -> list[dict[str, Any]]:
    with core.db.read() as s:
        authz.require_user(actor)
        users = s.scalars(select(User).where(User.org_id == actor.org_id).order_by(User.id)).all()
        return [views.user(u, _roles(s, u.id)) for u in users]


def get_user(core: Core, actor: Actor, user_id: str) -> dict[str, Any]:
    with core.db.read() as s:
        authz.require_user(actor)
        u = s.get(User, user_id)
        if u is None or u.org_id != actor.org_id:
            raise NotFound(f"user {user_id!r} not found", code="user_not_found")
        return views.user(u, _roles(s, u.id))


def me(core: Core, actor: Actor) -> dict[str, Any]:
    if actor.kind == "machine":
        return {"kind": "machine", "id": actor.id, "name": actor.name, "environment": actor.env_id}
    return get_user(core, actor, actor.id)


def create_environment(core: Core, actor: Actor, name: str) -> dict[str, Any]:
    with core.db.transaction() as s:
        authz.require_user(actor)
        if not _admin_envs(s, actor):
            raise Forbidden("only system administrators create environments")
        if s.scalar(select(Environment.id).where(Environment.org_id == actor.org_id, Environment.name == name)):
            raise Conflict(f"an environment named {name!r} exists", code="duplicate_name")
        env = Environment(org_id=actor.org_id, name=name)
        s.add(env)
        s.flush()
        s.add(EnvironmentRoleGrant(user_id=actor.id, env_id=env.id, role=EnvironmentRole.SYSTEM_ADMINISTRATOR))
        record(s, actor=actor.label, action="environment.create", env_id=env.id, object_type="environment",
               object_id=env.id, detail={"name": name})
        return views.environment(env)


def list_environments(core: Core, actor: Actor) -> list[dict[str, Any]]:
    with core.db.read() as s:
        authz.require_user(actor)
        envs = s.scalars(select(Environment).join(EnvironmentRoleGrant, EnvironmentRoleGrant.env_id == Environment.id)
                         .where(EnvironmentRoleGrant.user_id == actor.id).order_by(Environment.id)).all()
        return [views.environment(e) for e in envs]


def get_environment(core: Core, actor: Actor, env_id: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        return {**views.environment(env), "my_role": role.value}
