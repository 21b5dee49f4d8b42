"""The one authorization module. Every operation asks here, and the answers come from the role tables in
``credflow.domain.roles``. Not visible -> 404 (never leak existence); visible but not allowed -> 403."""

from __future__ import annotations

import hashlib

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
from credflow.persistence.tables import (
    Credential,
    CredentialShare,
    Environment,
    EnvironmentRoleGrant,
    EnvironmentVariable,
    Machine,
    TeamMember,
    User,
    VariableGrant,
)
from credflow.services import lookup
from credflow.services.core import Actor


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MACHINE_TOKEN_PREFIX = "cfm_"


def authenticate(session: Session, token: str | None) -> Actor:
    if not token:
        raise Unauthenticated("send Authorization: Bearer <token>")
    digest = token_hash(token)
    # Machine tokens say so in their prefix: look there first on the agents' hot path. A bootstrap token may
    # be any string, so both tables are always asked before the token is refused.
    finders = (_machine, _user) if token.startswith(MACHINE_TOKEN_PREFIX) else (_user, _machine)
    for find in finders:
        actor = find(session, digest)
        if actor is not None:
            return actor
    raise Unauthenticated("the token is not valid")


def _user(session: Session, digest: str) -> Actor | None:
    user = session.scalar(select(User).where(User.token_hash == digest))
    return Actor(kind="user", id=user.id, org_id=user.org_id, name=user.name) if user is not None else None


def _machine(session: Session, digest: str) -> Actor | None:
    machine = session.scalar(select(Machine).where(Machine.token_hash == digest))
    if machine is None:
        return None
    env = session.get(Environment, machine.env_id)
    return Actor(kind="machine", id=machine.id, org_id=env.org_id if env else "", name=machine.name,
                 env_id=machine.env_id)


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
    teams = session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == actor.id)).all()
    return [actor.id, *teams]


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
        raise Forbidden(f"your role {cred_role.value} on this credential does not allow {action}")
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
