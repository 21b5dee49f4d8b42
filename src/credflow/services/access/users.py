"""Bootstrap, users and environments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, Forbidden, NotFound, RuleViolation
from credflow.domain.roles import EnvironmentRole
from credflow.persistence.tables import (
    ApiToken,
    CloudFlow,
    Connection,
    ConnectionReference,
    Credential,
    CredentialShare,
    DesktopFlow,
    Environment,
    EnvironmentRoleGrant,
    EnvironmentVariable,
    Machine,
    MachineGroup,
    Organization,
    Solution,
    Team,
    TeamMember,
    User,
    utcnow,
)
from credflow.services import lookup, views
from credflow.services.access import authz, connection_access, sessions, tokens
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


def list_users(core: Core, actor: Actor, include_removed: bool = False, limit: int = 50,
               cursor: str | None = None) -> dict[str, Any]:
    """One page of users, in the order they were made: organization administrators see every user; others the
    users who share an environment with them. Removed users (who may still own things) only when asked for."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        authz.require_user(actor)
        visible = authz.visible_user_ids(s, actor)
        q = select(User).where(User.org_id == actor.org_id)
        if not include_removed:
            q = q.where(User.removed_at.is_(None))
        if visible is not None:
            q = q.where(User.id.in_(visible))
        return lookup.seek(s, q, User.id, limit=limit, cursor=cursor,
                           view=lambda u: views.user(u, _shown_roles(s, actor, visible, u)))


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


def list_environments(core: Core, actor: Actor, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    """One page of the environments the caller has a role in, in the order they were made."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        authz.require_user(actor)
        q = (select(Environment).join(EnvironmentRoleGrant, EnvironmentRoleGrant.env_id == Environment.id)
             .where(EnvironmentRoleGrant.user_id == actor.id))
        return lookup.seek(s, q, Environment.id, limit=limit, cursor=cursor, view=views.environment)


def get_environment(core: Core, actor: Actor, env_id: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        return {**views.environment(env), "my_role": role.value}


# --- users who leave --------------------------------------------------------------------------------------------
def _managed_user(s: Session, actor: Actor, user_ref: str) -> User:
    """A user the caller may see (404 otherwise) and manage (403 ``not_your_user``), not yet removed."""
    authz.require_user(actor)
    user = lookup.user_by_id_or_email(s, user_ref)
    visible = authz.visible_user_ids(s, actor)
    if user is None or user.org_id != actor.org_id or (visible is not None and user.id not in visible) \
            or user.removed_at is not None:
        raise NotFound(f"user {user_ref!r} not found", code="user_not_found")
    if user.id != actor.id:
        authz.require_manage_user(s, actor, user)
    return user


def _require_another_admin(s: Session, user: User, doing: str) -> None:
    """The organization keeps at least one organization administrator who can act (409 otherwise)."""
    others = s.scalar(select(func.count()).select_from(User).where(
        User.org_id == user.org_id, User.id != user.id, User.organization_admin.is_(True),
        User.disabled.is_(False), User.removed_at.is_(None)))
    if not others:
        raise Conflict(f"{doing} would leave the organization without an organization administrator",
                       code="last_organization_admin")


def update_user(core: Core, actor: Actor, user_ref: str, *, disabled: bool | None = None,
                organization_admin: bool | None = None,
                environment_roles: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Change a user: disable or enable it (a disabled user's tokens and sessions answer 401 everywhere, and its
    sessions end), make or unmake an organization administrator (organization administrators only), set or take
    away (``None``) environment roles (in environments the caller administers, unless it is an organization
    administrator). A role taken away turns the user's connections ``access_revoked`` and takes the user out of the
    teams of that environment, in the same transaction."""
    with core.db.transaction() as s:
        user = _managed_user(s, actor, user_ref)
        org_admin = authz.is_organization_admin(s, actor.id)
        changes: dict[str, Any] = {}
        if user.id == actor.id and (disabled or organization_admin is False):
            raise RuleViolation("you may not disable yourself or give up your own organization administration; "
                                "ask another organization administrator", code="not_on_yourself")
        if organization_admin is not None and organization_admin != user.organization_admin:
            if not org_admin:
                raise Forbidden("only organization administrators make or unmake organization administrators",
                                code="not_organization_admin")
            if not organization_admin:
                _require_another_admin(s, user, "unmaking this organization administrator")
            user.organization_admin = organization_admin
            changes["organization_admin"] = organization_admin
        if environment_roles:
            changes["environment_roles"] = _set_roles(s, actor, org_admin, user, environment_roles)
        if disabled is not None and disabled != user.disabled:
            if disabled and user.organization_admin:
                _require_another_admin(s, user, "disabling this organization administrator")
            user.disabled = disabled
            changes["disabled"] = disabled
            if disabled:
                changes["sessions_ended"] = sessions.end_all(s, user.id)
        if changes:
            record(s, actor=actor.label, action="user.update", object_type="user", object_id=user.id,
                   detail={"email": user.email, **changes})
        visible = authz.visible_user_ids(s, actor)
        return views.user(user, _shown_roles(s, actor, visible, user))


def _set_roles(s: Session, actor: Actor, org_admin: bool, user: User, wanted: dict[str, str | None]
               ) -> dict[str, Any]:
    admin_of = authz.administered_envs(s, actor.id)
    resolved: dict[str, str | None] = {}
    for env_ref, role in wanted.items():
        env = _env_of_org(s, actor, env_ref) if org_admin else authz.environment(s, actor, env_ref)[0]
        if not org_admin and env.id not in admin_of:
            raise Forbidden(f"you are not a system administrator of environment {env_ref!r}")
        try:
            resolved[env.id] = EnvironmentRole(role).value if role is not None else None
        except ValueError:
            raise RuleViolation(f"unknown environment role {role!r}", code="unknown_role",
                                allowed=[r.value for r in EnvironmentRole]) from None
    return apply_roles(s, user, resolved)


def apply_roles(s: Session, user: User, wanted: dict[str, str | None]) -> dict[str, Any]:
    """Set (or, ``None``, take away) the user's role in each environment named by id, in the caller's transaction;
    a role taken away takes the user out of that environment's teams, and the user's connections follow
    (``access_revoked`` and back). Returns what changed."""
    changed: dict[str, str | None] = {}
    taken: list[str] = []
    for env_id, role in wanted.items():
        grant = s.get(EnvironmentRoleGrant, (user.id, env_id))
        if role is None:
            if grant is not None:
                s.delete(grant)
                taken.append(env_id)
                changed[env_id] = None
            continue
        if grant is None:
            s.add(EnvironmentRoleGrant(user_id=user.id, env_id=env_id, role=role))
        elif grant.role != role:
            grant.role = role
        else:
            continue
        changed[env_id] = role
    if not changed:
        return {"changed": {}}
    s.flush()
    left_teams = _leave_teams(s, user.id, taken)
    revoked = connection_access.refresh_owner(s, user.id)
    return {"changed": changed, "teams_left": left_teams, "connections_changed": revoked}


def _leave_teams(s: Session, user_id: str, env_ids: list[str]) -> list[str]:
    """Take the user out of the teams of environments it no longer has a role in."""
    if not env_ids:
        return []
    teams = s.scalars(select(Team.id).join(TeamMember, TeamMember.team_id == Team.id)
                      .where(TeamMember.user_id == user_id, Team.env_id.in_(env_ids))).all()
    if teams:
        s.execute(delete(TeamMember).where(TeamMember.user_id == user_id, TeamMember.team_id.in_(teams)))
    return list(teams)


def remove_user(core: Core, actor: Actor, user_ref: str) -> None:
    """Remove a user: its roles, team memberships, tokens and sessions go at once, and its connections turn
    ``access_revoked``. The row stays, disabled, as the owner of what it made (credentials, connections, flows)
    until an administrator reassigns them (``reassign``); its email is freed for a new user."""
    with core.db.transaction() as s:
        user = _managed_user(s, actor, user_ref)
        if user.id == actor.id:
            raise RuleViolation("you may not remove yourself; ask another administrator", code="not_on_yourself")
        if user.organization_admin:
            _require_another_admin(s, user, "removing this organization administrator")
        roles = authz.roles_of(s, user.id)
        s.execute(delete(EnvironmentRoleGrant).where(EnvironmentRoleGrant.user_id == user.id))
        teams = s.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user.id)).all()
        s.execute(delete(TeamMember).where(TeamMember.user_id == user.id))
        token_count = s.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
        ended = sessions.end_all(s, user.id)
        email = user.email
        user.disabled, user.removed_at, user.organization_admin = True, utcnow(), False
        user.email, user.password_hash = f"{user.id}@removed.invalid", None
        s.flush()
        revoked = connection_access.refresh_owner(s, user.id)
        record(s, actor=actor.label, action="user.remove", object_type="user", object_id=user.id,
               detail={"email": email, "roles": roles, "teams": list(teams), "sessions_ended": ended,
                       "tokens_revoked": int(getattr(token_count, "rowcount", 0) or 0),
                       "connections_changed": revoked})


# What an environment holds that has an owner: the kinds ``reassign`` moves, by the name it reports them under.
OWNED: dict[str, Any] = {
    "environment_variables": EnvironmentVariable, "credentials": Credential, "connections": Connection,
    "connection_references": ConnectionReference, "desktop_flows": DesktopFlow, "cloud_flows": CloudFlow,
    "machine_groups": MachineGroup, "machines": Machine, "solutions": Solution,
}


def reassign(core: Core, actor: Actor, env_ref: str, from_ref: str, to_ref: str) -> dict[str, Any]:
    """Move the ownership of everything ``from_user`` owns in an environment to ``to_user`` (a current user with a
    role there): for a user who left, or is about to. System administrators of the environment and organization
    administrators. The new owner's own shares of the credentials it now owns go (the owner holds every right), and
    the moved connections' access is recomputed for their new owner."""
    with core.db.transaction() as s:
        authz.require_user(actor)
        if authz.is_organization_admin(s, actor.id):
            env = _env_of_org(s, actor, env_ref)
        else:
            env, _ = authz.require_env(s, actor, env_ref, "environment.admin")
        source = lookup.user_by_id_or_email(s, from_ref)
        target = lookup.user_by_id_or_email(s, to_ref)
        for ref, found in ((from_ref, source), (to_ref, target)):
            if found is None or found.org_id != actor.org_id:
                raise NotFound(f"user {ref!r} not found", code="user_not_found")
        assert source is not None and target is not None
        if not authz.is_active(target):
            raise RuleViolation("the new owner is disabled or removed", code="user_disabled")
        if s.get(EnvironmentRoleGrant, (target.id, env.id)) is None:
            raise RuleViolation("the new owner has no role in this environment", code="not_in_environment")
        if source.id == target.id:
            raise RuleViolation("from_user and to_user are the same user", code="same_user")
        moved: dict[str, int] = {}
        for kind, table in OWNED.items():
            ids = s.scalars(select(table.id).where(table.env_id == env.id, table.owner_id == source.id)).all()
            moved[kind] = len(ids)
            if ids:
                s.execute(update(table).where(table.id.in_(ids)).values(owner_id=target.id))
                if table is Credential:
                    s.execute(delete(CredentialShare).where(CredentialShare.credential_id.in_(ids),
                                                            CredentialShare.principal_id == target.id))
        s.flush()
        conns = s.scalars(select(Connection.credential_id).distinct().where(
            Connection.env_id == env.id, Connection.owner_id == target.id, Connection.credential_id.is_not(None)))
        changed = [c for cid in conns.all() if cid for c in connection_access.refresh_access(s, cid)]
        record(s, actor=actor.label, action="environment.reassign", env_id=env.id, object_type="user",
               object_id=source.id, detail={"from_user": source.id, "to_user": target.id, "moved": moved,
                                            "connections_changed": changed})
        return {"from_user": source.id, "to_user": target.id, "environment": env.id, "moved": moved}
