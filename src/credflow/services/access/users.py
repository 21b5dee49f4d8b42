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
from credflow.services import lookup, views
from credflow.services.access import authz, tokens
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
        admin = User(org_id=org.id, name="admin", email="admin@localhost", organization_admin=True)
        s.add_all([env, admin])
        s.flush()
        tokens.issue(s, admin.id, "bootstrap", token=made)
        s.add(EnvironmentRoleGrant(user_id=admin.id, env_id=env.id, role=EnvironmentRole.SYSTEM_ADMINISTRATOR))
        record(s, actor=f"user:{admin.id}", action="bootstrap", env_id=env.id, object_type="user",
               object_id=admin.id)
        return None if token else made


def _env_of_org(s: Session, actor: Actor, ref: str) -> Environment:
    """An environment of the caller's organization by id or name, for an organization administrator (who may
    hold no role in it)."""
    env = s.get(Environment, ref)
    if env is None or env.org_id != actor.org_id:
        env = s.scalar(select(Environment).where(Environment.org_id == actor.org_id, Environment.name == ref))
    if env is None:
        raise NotFound(f"environment {ref!r} not found", code="environment_not_found")
    return env


def create_user(core: Core, actor: Actor, name: str, email: str, environment_roles: dict[str, str],
                organization_admin: bool = False) -> dict[str, Any]:
    """Organization administrators create users in any environment (and other organization administrators);
    a system administrator creates users only in environments it administers."""
    with core.db.transaction() as s:
        authz.require_user(actor)
        org_admin = authz.is_organization_admin(s, actor.id)
        admin_of = authz.administered_envs(s, actor.id)
        if not org_admin and not admin_of:
            raise Forbidden("only system administrators create users")
        if organization_admin and not org_admin:
            raise Forbidden("only organization administrators make organization administrators",
                            code="not_organization_admin")
        resolved: dict[str, str] = {}
        for env_ref, role in environment_roles.items():
            env = _env_of_org(s, actor, env_ref) if org_admin else authz.environment(s, actor, env_ref)[0]
            if not org_admin and env.id not in admin_of:
                raise Forbidden(f"you are not a system administrator of environment {env_ref!r}")
            try:
                resolved[env.id] = EnvironmentRole(role).value
            except ValueError:
                raise RuleViolation(f"unknown environment role {role!r}", code="unknown_role",
                                    allowed=[r.value for r in EnvironmentRole]) from None
        if s.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
            raise Conflict(f"a user with email {email!r} exists", code="duplicate_email")
        user = User(org_id=actor.org_id, name=name, email=email, organization_admin=organization_admin)
        s.add(user)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict(f"a user with email {email!r} exists", code="duplicate_email") from None
        _, token = tokens.issue(s, user.id, "initial")
        for env_id, role in resolved.items():
            s.add(EnvironmentRoleGrant(user_id=user.id, env_id=env_id, role=role))
        record(s, actor=actor.label, action="user.create", object_type="user", object_id=user.id,
               detail={"email": email, "roles": resolved, "organization_admin": organization_admin})
        return {**views.user(user, resolved), "token": token}


def _shown_roles(s: Session, actor: Actor, visible: set[str] | None, user: User) -> dict[str, str]:
    """A user's roles as the caller may see them: all of them for an organization administrator (or oneself),
    else only those in environments the caller has a role in."""
    roles = authz.roles_of(s, user.id)
    if visible is None or user.id == actor.id:
        return roles
    mine = authz.roles_of(s, actor.id)
    return {env: role for env, role in roles.items() if env in mine}


def list_users(core: Core, actor: Actor) -> list[dict[str, Any]]:
    """Organization administrators see every user; others the users who share an environment with them."""
    with core.db.read() as s:
        authz.require_user(actor)
        visible = authz.visible_user_ids(s, actor)
        q = select(User).where(User.org_id == actor.org_id)
        if visible is not None:
            q = q.where(User.id.in_(visible))
        return [views.user(u, _shown_roles(s, actor, visible, u)) for u in s.scalars(q.order_by(User.id)).all()]


def page_users(core: Core, actor: Actor, listing: lookup.Listing) -> dict[str, Any]:
    """One page of ``list_users``, searched by name or email, sorted by name, email or creation; each with the
    names of the environments of its roles (``environment_names``, by id)."""
    with core.db.read() as s:
        authz.require_user(actor)
        visible = authz.visible_user_ids(s, actor)
        q = select(User).where(User.org_id == actor.org_id)
        if visible is not None:
            q = q.where(User.id.in_(visible))
        found = lookup.page(s, q, listing, search=[User.name, User.email], key=User.id,
                            view=lambda u: views.user(u, _shown_roles(s, actor, visible, u)),
                            sorts={"name": User.name, "email": User.email, "created": User.created_at})
        names = lookup.names_of(s, Environment.name, (e for u in found["items"] for e in u["environment_roles"]))
        for u in found["items"]:
            u["environment_names"] = {e: names.get(e, e) for e in u["environment_roles"]}
        return found


def get_user(core: Core, actor: Actor, user_id: str) -> dict[str, Any]:
    with core.db.read() as s:
        authz.require_user(actor)
        u = s.get(User, user_id)
        visible = authz.visible_user_ids(s, actor)
        if u is None or u.org_id != actor.org_id or (visible is not None and u.id not in visible):
            raise NotFound(f"user {user_id!r} not found", code="user_not_found")
        return views.user(u, _shown_roles(s, actor, visible, u))


def me(core: Core, actor: Actor) -> dict[str, Any]:
    if actor.kind == "machine":
        return {"kind": "machine", "id": actor.id, "name": actor.name, "environment": actor.env_id}
    return get_user(core, actor, actor.id)


def create_environment(core: Core, actor: Actor, name: str) -> dict[str, Any]:
    with core.db.transaction() as s:
        authz.require_user(actor)
        if not authz.administered_envs(s, actor.id) and not authz.is_organization_admin(s, actor.id):
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
