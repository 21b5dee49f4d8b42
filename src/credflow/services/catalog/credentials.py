"""Credentials: a name, a text environment variable for the username and a secret one for the password.

The seed's rules live here: the variable types, the variables fixed once the credential exists, names unique
per environment, and deleting a credential keeps its variables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, RuleViolation
from credflow.domain.names import check_name
from credflow.domain.roles import EnvironmentRole
from credflow.domain.statuses import ConnectionStatus, RunStatus
from credflow.persistence.tables import (
    Connection,
    Credential,
    EnvironmentVariable,
    MachineGroupMember,
    Run,
    SecretStore,
    User,
    utcnow,
)
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.automation.desktop_flows import find_desktop_flow
from credflow.services.catalog import dependencies, verification
from credflow.services.catalog.solutions import attach_to_solution
from credflow.services.catalog.variables import find_variable
from credflow.services.core import Actor, Core

IMMUTABLE = ("username_variable", "password_variable")
MAX_CONCURRENT_RUNS = 10_000


def _unique(s: Session, env_id: str, name: str, except_id: str | None = None) -> None:
    other = s.scalar(select(Credential.id).where(Credential.env_id == env_id, Credential.name == name))
    if other is not None and other != except_id:
        raise Conflict(f"a credential named {name!r} exists in this environment", code="duplicate_name")


def require_binding(s: Session, actor: Actor, role: EnvironmentRole, password_variable: EnvironmentVariable
                    ) -> None:
    """Binding a secret variable into a credential needs the right to use its store: the same right creating the
    variable needs. Seeing the variable (a share's read grant) is not enough."""
    store = s.get(SecretStore, password_variable.store_id) if password_variable.store_id else None
    if store is None:
        raise RuleViolation("the password variable names no secret store", code="secret_unreadable")
    authz.require_store_use(s, actor, store, role)


def create_credential(core: Core, actor: Actor, env_id: str, name: str, description: str | None,
                      username_variable: str, password_variable: str, solution: str | None = None,
                      max_age_days: int | None = None, max_concurrent_runs: int | None = None,
                      verification_spec: Any = None) -> dict[str, Any]:
    name = check_name(name, "credential")
    max_age_days = _max_age(max_age_days)
    max_concurrent_runs = _max_runs(max_concurrent_runs)
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "credential.create")
        user_var = find_variable(s, env.id, username_variable)
        pass_var = find_variable(s, env.id, password_variable)
        if user_var.type != "text":
            raise RuleViolation("the username must be a text environment variable", code="wrong_variable_type",
                                variable=user_var.schema_name)
        if pass_var.type != "secret":
            raise RuleViolation("the password must be a secret environment variable", code="wrong_variable_type",
                                variable=pass_var.schema_name)
        require_binding(s, actor, role, pass_var)
        _unique(s, env.id, name)
        cred = Credential(env_id=env.id, name=name, description=description, username_variable_id=user_var.id,
                          password_variable_id=pass_var.id, owner_id=actor.id, max_age_days=max_age_days)
        cred.max_concurrent_runs = max_concurrent_runs
        s.add(cred)
        s.flush()
        record(s, actor=actor.label, action="credential.create", env_id=env.id, object_type="credential",
               object_id=cred.id, detail={"name": name, "username_variable": user_var.id,
                                          "password_variable": pass_var.id})
        if verification_spec is not None:
            verification.configure(s, actor, cred, verification_spec)
        if solution:
            attach_to_solution(s, env.id, solution, "credential", cred.id)
        return views.credential(cred, "owner")


def list_credentials(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                     ) -> dict[str, Any]:
    """One page of the credentials the caller sees, in the order they were made, each with the caller's role."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        q = select(Credential).where(Credential.env_id == env.id, authz.visible_credentials_clause(s, actor, role))

        def view(cred: Credential) -> dict[str, Any]:
            my_role = authz.credential_role(s, actor, cred, role)
            return views.credential(cred, my_role.value if my_role else None)
        return lookup.seek(s, q, Credential.id, limit=limit, cursor=cursor, view=view)


def page_credentials(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the credentials the caller sees, searched by name, sorted by name, status or creation; each
    with its owner's name and email."""
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        q = select(Credential).where(Credential.env_id == env.id, authz.visible_credentials_clause(s, actor, role))

        def view(cred: Credential) -> dict[str, Any]:
            my_role = authz.credential_role(s, actor, cred, role)
            return views.credential(cred, my_role.value if my_role else None)

        found = lookup.page(s, q, listing, search=[Credential.name], key=Credential.id, view=view,
                            sorts={"name": Credential.name, "status": Credential.status,
                                   "created": Credential.created_at})
        owners = {u.id: u for u in s.scalars(select(User).where(User.id.in_({c["owner"] for c in found["items"]})))}
        for c in found["items"]:
            owner = owners.get(c["owner"])
            c["owner_name"], c["owner_email"] = (owner.name, owner.email) if owner else (None, None)
        return found


def get_credential(core: Core, actor: Actor, env_id: str, cred_id: str) -> dict[str, Any]:
    with core.db.read() as s:
        cred, role = authz.credential(s, actor, env_id, cred_id, "view")
        return views.credential(cred, role.value)


def update_credential(core: Core, actor: Actor, env_id: str, cred_id: str, changes: dict[str, Any]
                      ) -> dict[str, Any]:
    unknown = sorted(set(changes) - {"name", "description", "allowed_desktop_flows", "max_age_days",
                                     "max_concurrent_runs", "verification", *IMMUTABLE})
    if unknown:
        raise RuleViolation(f"unknown field(s): {', '.join(unknown)}", code="unknown_field")
    named = [f for f in IMMUTABLE if f in changes]
    if named:
        raise RuleViolation(
            "the environment variables of an existing credential cannot be changed; update the variables "
            "themselves or the vault secret", code="credential_variables_immutable", fields=named)
    with core.db.transaction() as s:
        cred, role = authz.credential(s, actor, env_id, cred_id, "edit")
        if "name" in changes:
            name = check_name(changes["name"], "credential")
            _unique(s, cred.env_id, name, except_id=cred.id)
            cred.name = name
        if "description" in changes:
            cred.description = changes["description"]
        if "allowed_desktop_flows" in changes:
            cred.allowed_desktop_flows = _allowed_flows(s, cred.env_id, changes["allowed_desktop_flows"])
        if "max_age_days" in changes:
            cred.max_age_days = _max_age(changes["max_age_days"])
        if "max_concurrent_runs" in changes:
            old, cred.max_concurrent_runs = cred.max_concurrent_runs, _max_runs(changes["max_concurrent_runs"])
            _limit_raised(core, s, cred.id, old, cred.max_concurrent_runs)
        if "verification" in changes:
            s.flush()  # allowed_desktop_flows changed above counts for the verification's flow
            verification.configure(s, actor, cred, changes["verification"])
        cred.updated_at = utcnow()
        record(s, actor=actor.label, action="credential.update", env_id=cred.env_id, object_type="credential",
               object_id=cred.id, detail={"fields": sorted(changes)})
        return views.credential(cred, role.value)


def _limit_raised(core: Core, s: Session, cred_id: str, old: int | None, new: int | None) -> None:
    """A credential's limit raised or lifted in ``s``: once it commits, the waiting claims of machines its queued
    runs target are woken, one per lease that became free (each of them when the limit is lifted): those runs
    need not wait for the claims' next look (services/automation/leases.py)."""
    if old is None or (new is not None and new <= old):
        return
    queued = exists().where(Run.connection_id == Connection.id, Run.status == RunStatus.QUEUED)
    direct = select(Connection.machine_id).where(Connection.credential_id == cred_id,
                                                 Connection.machine_id.is_not(None), queued)
    grouped = (select(MachineGroupMember.machine_id)
               .join(Connection, Connection.machine_group_id == MachineGroupMember.group_id)
               .where(Connection.credential_id == cred_id, queued))
    machines = sorted({m for m in s.scalars(direct.union(grouped)).all() if m})
    if machines:
        core.emit_on_commit(s, "runs_queued", machines, len(machines) if new is None else new - old)


def _max_runs(value: Any) -> int | None:
    """None (no limit), or how many runs may use the credential at once (services/automation/leases.py)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENT_RUNS:
        raise RuleViolation(f"max_concurrent_runs is null (no limit) or a whole number from 1 to "
                            f"{MAX_CONCURRENT_RUNS}", code="invalid_max_concurrent_runs", field="max_concurrent_runs")
    return value


def _max_age(value: Any) -> int | None:
    """None, or a whole number of days of at least 1: how old the password may grow before the health page says
    ``not_rotated``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RuleViolation("max_age_days is null or a whole number of days, at least 1", code="invalid_max_age_days",
                            field="max_age_days")
    return value


def _allowed_flows(s: Session, env_id: str, refs: Any) -> list[str] | None:
    """None (any flow), or the ids of the named desktop flows of the environment (by id or name)."""
    if refs is None:
        return None
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise RuleViolation("allowed_desktop_flows is null or a list of desktop flow ids", code="invalid_request")
    return sorted({find_desktop_flow(s, env_id, r).id for r in refs})


def delete_credential(core: Core, actor: Actor, env_id: str, cred_id: str, force: bool = False) -> None:
    with core.db.transaction() as s:
        cred, _ = authz.credential(s, actor, env_id, cred_id, "delete")
        using = dependencies.of_credential(s, cred)
        if using["connections"] and not force:
            raise Conflict("connections use this credential; delete them first or pass force=true",
                           code="in_use", dependents=using)
        s.execute(update(Connection).where(Connection.credential_id == cred.id)
                  .values(status=ConnectionStatus.CREDENTIAL_DELETED, credential_id=None, updated_at=utcnow())
                  .execution_options(synchronize_session=False))
        record(s, actor=actor.label, action="credential.delete", env_id=cred.env_id, object_type="credential",
               object_id=cred.id, detail={"name": cred.name, "forced": bool(using["connections"])})
        s.delete(cred)  # the environment variables stay (the seed's rule)
