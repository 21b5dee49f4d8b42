"""The one authorization module. Every operation asks here, and the answers come from the role tables in
``credflow.domain.roles``. Not visible -> 404 (never leak existence); visible but not allowed -> 403.

Besides the role tables, three kinds of rule live here and nowhere else (docs/threat-model.md lists them):
- ownership: who may change or delete an object of an environment (``require_owner``), and who may manage a
  user (``may_manage_user``);
- use: who may bind a store's secrets (``may_use_store``), use a credential (``may_use_credential``) and run on
  a connection (``may_use_connection``);
- the use chain a run must hold at claim time before a password is sealed to a machine (``use_chain_break``).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from credflow.domain.errors import Forbidden, NotFound, Unauthenticated
from credflow.domain.roles import (
    CredentialRole,
    EnvironmentRole,
    credential_allows,
    env_allows,
    strongest,
)
from credflow.domain.statuses import ConnectionStatus
from credflow.persistence.tables import (
    ApiToken,
    Connection,
    Credential,
    CredentialShare,
    DesktopFlow,
    Environment,
    EnvironmentRoleGrant,
    EnvironmentVariable,
    Machine,
    Run,
    SecretStore,
    StoreAccess,
    TeamMember,
    User,
    VariableGrant,
    utcnow,
)
from credflow.services import lookup
from credflow.services.core import Actor


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MACHINE_TOKEN_PREFIX = "cfm_"


def authenticate(session: Session, token: str | None, digest: str | None = None) -> Actor:
    """The user or machine whose token this is (``digest``: its ``token_hash``, when known). A user token answers
    401 once it has expired or been revoked, and while its user is disabled or removed."""
    if not token:
        raise Unauthenticated("send Authorization: Bearer <token>")
    digest = digest or token_hash(token)
    # Machine tokens say so in their prefix: look there first on the agents' hot path. A bootstrap token may
    # be any string, so both tables are always asked before the token is refused.
    finders = (_machine, _user) if token.startswith(MACHINE_TOKEN_PREFIX) else (_user, _machine)
    for find in finders:
        actor = find(session, digest)
        if actor is not None:
            return actor
    raise Unauthenticated("the token is not valid")


def _user(session: Session, digest: str) -> Actor | None:
    found = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                            .where(ApiToken.token_hash == digest)).first()
    if found is None:
        return None
    token, user = found
    if token.expires_at <= utcnow():
        raise Unauthenticated("the token has expired; make a new one", code="token_expired")
    if not is_active(user):
        raise Unauthenticated("the user is disabled", code="user_disabled")
    return Actor(kind="user", id=user.id, org_id=user.org_id, name=user.name, token_id=token.id,
                 token_last_used=token.last_used_at, token_expires_at=token.expires_at)


def _machine(session: Session, digest: str) -> Actor | None:
    # One statement: the agents call often, and a waiting agent's claims should cost the database little.
    found = session.execute(select(Machine.id, Machine.name, Machine.env_id, Environment.org_id)
                            .outerjoin(Environment, Environment.id == Machine.env_id)
                            .where(Machine.token_hash == digest)).first()
    if found is None:
        return None
    machine_id, name, env_id, org_id = found
    return Actor(kind="machine", id=machine_id, org_id=org_id or "", name=name, env_id=env_id)


def is_active(user: User | None) -> bool:
    """Whether a user may act at all: it exists, is not disabled and has not been removed."""
    return user is not None and not user.disabled and user.removed_at is None


def require_user(actor: Actor) -> None:
    if actor.kind != "user":
        raise Forbidden("machine tokens reach only /machines/me endpoints", code="machine_token_not_allowed")


def require_machine(actor: Actor) -> None:
    if actor.kind != "machine":
        raise Forbidden("this endpoint is for machine tokens", code="user_token_not_allowed")


def env_role(session: Session, actor: Actor, env_id: str) -> EnvironmentRole | None:
    role = session.scalar(
        select(EnvironmentRoleGrant.role).where(
            EnvironmentRoleGrant.user_id == actor.id, EnvironmentRoleGrant.env_id == env_id
        )
    )
    return EnvironmentRole(role) if role else None


def environment(session: Session, actor: Actor, env_id: str) -> tuple[Environment, EnvironmentRole]:
    """The environment if the caller has a role in it (404 otherwise)."""
    require_user(actor)
    env = session.get(Environment, env_id)
    if env is None:
        env = session.scalar(select(Environment).where(Environment.org_id == actor.org_id,
                                                       Environment.name == env_id))
    role = env_role(session, actor, env.id) if env is not None and env.org_id == actor.org_id else None
    if env is None or role is None:
        raise NotFound(f"environment {env_id!r} not found", code="environment_not_found")
    return env, role


def require_env(session: Session, actor: Actor, env_id: str, action: str) -> tuple[Environment, EnvironmentRole]:
    env, role = environment(session, actor, env_id)
    if not env_allows(role, action):
        raise Forbidden(f"your role {role.value} in this environment does not allow {action}")
    return env, role


def is_env_admin(role: EnvironmentRole | None) -> bool:
    return role is EnvironmentRole.SYSTEM_ADMINISTRATOR


def principal_ids(session: Session, actor: Actor) -> list[str]:
    """The caller and the teams the caller belongs to: everything a share may name."""
    return _principal_ids(session, actor.id)


def _principal_ids(session: Session, user_id: str) -> list[str]:
    teams = session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)).all()
    return [user_id, *teams]


_KNOWN_ROLES = "credflow.known_env_roles"


def knew_role(session: Session, user_id: str, env_id: str, role: str | None) -> None:
    """A user's role in an environment, read by the caller with other rows in this transaction: the checks of a
    delivery that follow do not read it again."""
    session.info.setdefault(_KNOWN_ROLES, {})[(user_id, env_id)] = EnvironmentRole(role) if role else None


def _user_role(session: Session, user_id: str, env_id: str) -> EnvironmentRole | None:
    known: dict[tuple[str, str], EnvironmentRole | None] = session.info.get(_KNOWN_ROLES, {})
    if (user_id, env_id) in known:
        return known[(user_id, env_id)]
    return env_role(session, Actor(kind="user", id=user_id, org_id=""), env_id)


# --- ownership ------------------------------------------------------------------------------------------------
def owns(actor: Actor, role: EnvironmentRole | None, owner_id: str | None) -> bool:
    """The owner of an object, or a system administrator of its environment. An object without an owner (made
    before owners existed) is changed by administrators only."""
    return is_env_admin(role) or (owner_id is not None and owner_id == actor.id)


def require_owner(actor: Actor, role: EnvironmentRole | None, owner_id: str | None, what: str) -> None:
    """403 ``not_owner`` unless the caller owns the object or administers its environment."""
    if not owns(actor, role, owner_id):
        raise Forbidden(f"only the owner of this {what} or a system administrator may change it", code="not_owner")


def require_store_owner(actor: Actor, role: EnvironmentRole | None, store: SecretStore) -> None:
    """403 ``not_owner`` unless the caller may change or delete the secret store: a system administrator of its
    environment, or its creator while it may still register stores (every credential that reads the store would
    follow a change, so a creator who lost that right keeps none over the store)."""
    if not (owns(actor, role, store.created_by) and env_allows(role, "secret_store.create")):
        raise Forbidden("only the creator of this secret store or a system administrator may change it",
                        code="not_owner")


def is_organization_admin(session: Session, user_id: str) -> bool:
    return bool(session.scalar(select(User.organization_admin).where(User.id == user_id)))


def roles_of(session: Session, user_id: str) -> dict[str, str]:
    rows = session.execute(select(EnvironmentRoleGrant.env_id, EnvironmentRoleGrant.role)
                           .where(EnvironmentRoleGrant.user_id == user_id)).all()
    return {env: role for env, role in rows}


def administered_envs(session: Session, user_id: str) -> set[str]:
    return {e for e, r in roles_of(session, user_id).items() if r == EnvironmentRole.SYSTEM_ADMINISTRATOR}


def may_manage_user(session: Session, actor: Actor, target: User) -> bool:
    """Organization administrators manage every user of their organization. A system administrator manages a
    user only when every one of the user's environment roles is in an environment it administers (and the user
    has at least one), and never an organization administrator."""
    if actor.kind != "user" or target.org_id != actor.org_id:
        return False
    if is_organization_admin(session, actor.id):
        return True
    if target.organization_admin:
        return False
    target_envs = set(roles_of(session, target.id))
    return bool(target_envs) and target_envs <= administered_envs(session, actor.id)


def require_manage_user(session: Session, actor: Actor, target: User) -> None:
    if not may_manage_user(session, actor, target):
        raise Forbidden("you may manage only users whose every role is in environments you administer, and never "
                        "an organization administrator", code="not_your_user")


def visible_user_ids(session: Session, actor: Actor) -> set[str] | None:
    """The users the caller may see (None: all of the organization): those who share an environment with it."""
    if is_organization_admin(session, actor.id):
        return None
    mine = set(roles_of(session, actor.id))
    return set(session.scalars(select(EnvironmentRoleGrant.user_id)
                               .where(EnvironmentRoleGrant.env_id.in_(mine))).all()) | {actor.id}


# --- use ------------------------------------------------------------------------------------------------------
def may_use_store(session: Session, user_id: str, store: SecretStore, role: EnvironmentRole | None) -> bool:
    """Whether a user may reference (and so bind) the store's secrets: system administrators always; others when
    allowed, directly or through a team. An explicit entry for the user wins over any team's."""
    if role is None:
        return False
    if is_env_admin(role):
        return True
    rows: dict[str, bool] = {pid: allowed for pid, allowed in session.execute(
        select(StoreAccess.principal_id, StoreAccess.allowed).where(
            StoreAccess.store_id == store.id, StoreAccess.principal_id.in_(_principal_ids(session, user_id))))}
    if user_id in rows:
        return bool(rows[user_id])
    return any(rows.values())


def require_store_use(session: Session, actor: Actor, store: SecretStore, role: EnvironmentRole | None) -> None:
    if not may_use_store(session, actor.id, store, role):
        raise Forbidden(f"you may not use secrets of store {store.name!r}; ask a system administrator to allow "
                        "you", code="store_access_denied")


def may_use_credential(session: Session, user_id: str, cred: Credential,
                       env_role_: EnvironmentRole | Literal[False] | None = False) -> bool:
    """Whether a user may use the credential now: a role in its environment and a role on it that allows use.
    The one answer asked when a connection is made, when access is recomputed and when a run is delivered.
    ``env_role_``: the user's role in the credential's environment when the caller read it already."""
    role = _user_role(session, user_id, cred.env_id) if env_role_ is False else env_role_
    if role is None:
        return False
    who = Actor(kind="user", id=user_id, org_id="")
    return credential_allows(credential_role(session, who, cred, role), "use")


def may_use_connection(session: Session, user_id: str | None, conn: Connection) -> bool:
    """Runs on a connection are started by its owner or a system administrator of its environment."""
    if user_id is None:
        return False
    return conn.owner_id == user_id or is_env_admin(_user_role(session, user_id, conn.env_id))


def require_connection_use(session: Session, user_id: str | None, conn: Connection) -> None:
    if not may_use_connection(session, user_id, conn):
        raise Forbidden(f"connection {conn.name!r} is not yours: only its owner or a system administrator runs "
                        "flows on it", code="connection_not_yours", connection=conn.id)


def flow_allowed(cred: Credential, flow_id: str) -> bool:
    """The credential's owners may restrict the desktop flows that run with it; None lets any flow run."""
    return cred.allowed_desktop_flows is None or flow_id in cred.allowed_desktop_flows


def require_flow_allowed(cred: Credential, flow: DesktopFlow) -> None:
    if not flow_allowed(cred, flow.id):
        raise Forbidden(f"the credential {cred.name!r} does not allow the desktop flow {flow.name!r}",
                        code="desktop_flow_not_allowed", desktop_flow=flow.id, credential=cred.id)


def use_chain_break(session: Session, run: Run, conn: Connection, cred: Credential | None, flow: DesktopFlow,
                    store: SecretStore | None) -> tuple[str, str] | None:
    """The first broken link of the chain a run needs before its password leaves the server, as (reason,
    detail), or None when the chain holds. Asked at claim time, after everything may have changed since the
    run was queued."""
    if not may_use_connection(session, run.created_by, conn):
        return "connection_not_yours", "the run's starter may not use the connection"
    if run.created_by is not None and not is_active(session.get(User, run.created_by)):
        return "user_disabled", "the run's starter is disabled or removed"
    if not is_active(session.get(User, conn.owner_id)):
        return "user_disabled", "the connection's owner is disabled or removed"
    if cred is None:
        return None  # a connection with a typed username and password: its owner's own values
    conn_owner_role = _user_role(session, conn.owner_id, cred.env_id)
    if not may_use_credential(session, conn.owner_id, cred, conn_owner_role):
        return ConnectionStatus.ACCESS_REVOKED, "the connection's owner may no longer use the credential"
    cred_owner_role = (conn_owner_role if cred.owner_id == conn.owner_id
                       else _user_role(session, cred.owner_id, cred.env_id))  # one read when one user owns both
    if store is None or not may_use_store(session, cred.owner_id, store, cred_owner_role):
        return "store_access_denied", "the credential's owner may no longer use the password's secret store"
    if not flow_allowed(cred, flow.id):
        return "desktop_flow_not_allowed", "the credential does not allow this desktop flow"
    return None


def credential_role(session: Session, actor: Actor, credential: Credential,
                    env_role_: EnvironmentRole | None) -> CredentialRole | None:
    if credential.owner_id == actor.id:
        return CredentialRole.OWNER
    roles = session.scalars(
        select(CredentialShare.role).where(
            CredentialShare.credential_id == credential.id,
            CredentialShare.principal_id.in_(principal_ids(session, actor)),
        )
    ).all()
    held = [CredentialRole(r) for r in roles]
    if env_allows(env_role_, "credential.admin"):
        held.append(CredentialRole.CO_OWNER)  # system administrators can do everything in the environment
    return strongest(held)


def credential(session: Session, actor: Actor, env_id: str, credential_id: str, action: str
               ) -> tuple[Credential, CredentialRole]:
    """The credential if the caller may see it (404 otherwise) and do ``action`` on it (403 otherwise)."""
    env, role = environment(session, actor, env_id)
    cred = lookup.row_in_env(session, Credential, env.id, credential_id)
    cred_role = credential_role(session, actor, cred, role) if cred is not None else None
    if cred is None or cred_role is None:
        raise NotFound(f"credential {credential_id!r} not found", code="credential_not_found")
    if not credential_allows(cred_role, action):
        # Changing or deleting is for owners (and co-owners): the contract's ``not_owner``.
        code = "not_owner" if action in ("edit", "delete") else None
        raise Forbidden(f"your role {cred_role.value} on this credential does not allow {action}", code=code)
    return cred, cred_role


def visible_credentials_clause(session: Session, actor: Actor, role: EnvironmentRole) -> ColumnElement[bool]:
    if env_allows(role, "credential.admin"):
        return true()
    shared = select(CredentialShare.credential_id).where(
        CredentialShare.principal_id.in_(principal_ids(session, actor))
    )
    return or_(Credential.owner_id == actor.id, Credential.id.in_(shared))


def can_read_variable(session: Session, actor: Actor, variable: EnvironmentVariable,
                      role: EnvironmentRole) -> bool:
    if env_allows(role, "variable.read"):
        return True
    return session.scalar(
        select(VariableGrant.variable_id).where(
            VariableGrant.variable_id == variable.id,
            VariableGrant.principal_id.in_(principal_ids(session, actor)),
        )
    ) is not None


def variable(session: Session, actor: Actor, env_id: str, ref: str) -> tuple[EnvironmentVariable, EnvironmentRole]:
    """The environment variable, by id or schema name, if the caller may read it (404 otherwise)."""
    env, role = environment(session, actor, env_id)
    var = lookup.row_in_env(session, EnvironmentVariable, env.id, ref, EnvironmentVariable.schema_name)
    if var is None or not can_read_variable(session, actor, var, role):
        raise NotFound(f"environment variable {ref!r} not found", code="variable_not_found")
    return var, role


def visible_variables_clause(session: Session, actor: Actor, role: EnvironmentRole) -> ColumnElement[bool]:
    if env_allows(role, "variable.read"):
        return true()
    granted = select(VariableGrant.variable_id).where(
        VariableGrant.principal_id.in_(principal_ids(session, actor))
    )
    return EnvironmentVariable.id.in_(granted)
