"""Desktop flow connections: a machine or machine group, and either a credential (the seed's "Switch to
credentials") or a username and password typed in, kept under the barrier. An existing connection switches
between the two, or to another credential, with ``update_connection``.

``status`` is ``connected`` or the reason runs cannot get the values (``access_revoked``,
``credential_deleted``, ``secret_unreadable``); ``secret_version`` is the version the next run receives.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, NotFound, RuleViolation
from credflow.domain.names import check_name
from credflow.domain.roles import EnvironmentRole
from credflow.domain.statuses import ConnectionStatus, connection_status_named
from credflow.persistence.tables import Connection, Credential, Machine, MachineGroup, Run, User, utcnow
from credflow.services import lookup
from credflow.services.access import authz
from credflow.services.automation import delivery, run_state
from credflow.services.automation.machines import find_group, find_machine
from credflow.services.core import Actor, Core
from credflow.services.secrets import connection_state
from credflow.services.views import ts

MAX_USERNAME = 1000
MAX_PASSWORD = 10_000


def connection_view(conn: Connection) -> dict[str, Any]:
    """How a connection is shown (never a value). Other services reuse this."""
    if conn.machine_id:
        target: dict[str, str] | None = {"machine": conn.machine_id}
    elif conn.machine_group_id:
        target = {"machine_group": conn.machine_group_id}
    else:
        target = None
    return {"id": conn.id, "name": conn.name, "target": target, "credential": conn.credential_id,
            "auth": "username_password" if conn.sealed_password is not None else "credential",
            "owner": conn.owner_id, "status": conn.status, "secret_version": connection_state.version_of(conn),
            "environment": conn.env_id, "created_at": ts(conn.created_at), "updated_at": ts(conn.updated_at),
            **connection_state.freshness_of(conn)}  # the secret's age, and since when its vault fails


def find_connection(s: Session, actor: Actor, env_id: str, role: EnvironmentRole, ref: str) -> Connection:
    """A connection the caller owns (any, for system administrators), by id or name; 404 otherwise."""
    conn = s.get(Connection, ref)
    if conn is None or conn.env_id != env_id or not authz.owns(actor, role, conn.owner_id):
        named = [c for c in s.scalars(select(Connection).where(Connection.env_id == env_id, Connection.name == ref)
                                      .order_by(Connection.id)).all() if authz.owns(actor, role, c.owner_id)]
        if len(named) > 1:
            raise Conflict(f"several connections are named {ref!r}; use the id", code="ambiguous_name")
        conn = named[0] if named else None
    if conn is None:
        raise NotFound(f"connection {ref!r} not found", code="connection_not_found")
    return conn


def connection_to_use(s: Session, actor: Actor, env_id: str, role: EnvironmentRole, ref: str) -> Connection:
    """A connection the caller may run on or bind (its own; any, for system administrators), by id or name.
    Another user's connection named by its id is 403 ``connection_not_yours``."""
    conn = s.get(Connection, ref)
    if conn is not None and conn.env_id == env_id:
        authz.require_connection_use(s, actor.id, conn)
        return conn
    return find_connection(s, actor, env_id, role, ref)


def _target(s: Session, env_id: str, target: Any) -> tuple[str | None, str | None]:
    if not isinstance(target, dict) or len(target) != 1 or not set(target) <= {"machine", "machine_group"}:
        raise RuleViolation('target is {"machine": id} or {"machine_group": id}', code="invalid_target")
    if "machine" in target:
        return find_machine(s, env_id, str(target["machine"])).id, None
    return None, find_group(s, env_id, str(target["machine_group"])).id


def _check_fields(credential: str | None, username: str | None, password: str | None) -> None:
    typed = username is not None or password is not None
    if credential is not None and typed:
        raise RuleViolation("a connection uses either a credential or a username and password, not both",
                            code="wrong_fields")
    if credential is None and not typed:
        raise RuleViolation("a connection needs a credential, or a username and password", code="missing_credential")
    if typed and (not username or not password):
        raise RuleViolation("a connection without a credential needs both username and password",
                            code="missing_credential")
    if typed and (len(username or "") > MAX_USERNAME or len(password or "") > MAX_PASSWORD):
        raise RuleViolation("the username or password is too long", code="value_too_large")


def create_connection(core: Core, actor: Actor, env_id: str, name: str, target: Any, credential: str | None,
                      username: str | None = None, password: str | None = None) -> dict[str, Any]:
    name = check_name(name, "connection", one_code=True)
    _check_fields(credential, username, password)
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "connection.create")
        machine_id, group_id = _target(s, env.id, target)
        conn = Connection(env_id=env.id, name=name, owner_id=actor.id, machine_id=machine_id,
                          machine_group_id=group_id, status=ConnectionStatus.CONNECTED)
        if credential is not None:
            cred, _ = authz.credential(s, actor, env.id, credential, "use")
            conn.credential_id = cred.id
            _follow_credential(core, s, conn, cred)
        s.add(conn)
        s.flush()
        if credential is None:
            conn.sealed_username = core.barrier.seal(s, username or "", delivery.username_aad(conn.id))
            conn.sealed_password = core.barrier.seal(s, password or "", delivery.password_aad(conn.id))
        record(s, actor=actor.label, action="connection.create", env_id=env.id, object_type="connection",
               object_id=conn.id, detail={"name": conn.name, "machine": machine_id, "machine_group": group_id,
                                          "credential": conn.credential_id, "status": conn.status,
                                          "secret_version": connection_state.version_of(conn)})
        return connection_view(conn)


def update_connection(core: Core, actor: Actor, env_id: str, ref: str, *, name: str | None = None,
                      target: Any = None, credential: str | None = None, username: str | None = None,
                      password: str | None = None) -> dict[str, Any]:
    """Change a connection (its owner or a system administrator): rename it, move it to another machine or group,
    switch it to a credential (the caller needs ``use`` on it, and so does the connection's owner, who runs on it),
    or to a typed username and password. Its status and ``secret_version`` follow what it now uses."""
    typed = username is not None or password is not None
    if credential is not None and typed:
        raise RuleViolation("a connection uses either a credential or a username and password, not both",
                            code="wrong_fields")
    if username == "" or password == "":
        raise RuleViolation("a typed username or password may not be empty", code="missing_credential")
    if len(username or "") > MAX_USERNAME or len(password or "") > MAX_PASSWORD:
        raise RuleViolation("the username or password is too long", code="value_too_large")
    with core.db.transaction() as s:
        env, role = authz.environment(s, actor, env_id)
        conn = find_connection(s, actor, env.id, role, ref)
        changed: list[str] = []
        if name is not None:
            conn.name = check_name(name, "connection", one_code=True)
            changed.append("name")
        if target is not None:
            conn.machine_id, conn.machine_group_id = _target(s, env.id, target)
            changed.append("target")
        if credential is not None:
            cred, _ = authz.credential(s, actor, env.id, credential, "use")
            if not authz.may_use_credential(s, conn.owner_id, cred):
                raise RuleViolation("the connection's owner may not use this credential; share it with them first",
                                    code="owner_may_not_use_credential", credential=cred.id)
            conn.credential_id, conn.sealed_username, conn.sealed_password = cred.id, None, None
            _follow_credential(core, s, conn, cred)
            changed.append("credential")
        elif typed:
            if conn.sealed_password is None and (username is None or password is None):
                raise RuleViolation("a connection switched to a typed login needs both username and password",
                                    code="missing_credential")
            if username is not None:
                conn.sealed_username = core.barrier.seal(s, username, delivery.username_aad(conn.id))
            if password is not None:
                conn.sealed_password = core.barrier.seal(s, password, delivery.password_aad(conn.id))
            conn.credential_id, conn.status, conn.secret_version = None, ConnectionStatus.CONNECTED, None
            changed += [f for f, v in (("username", username), ("password", password)) if v is not None]
        conn.updated_at = utcnow()
        record(s, actor=actor.label, action="connection.update", env_id=env.id, object_type="connection",
               object_id=conn.id, detail={"changed": changed, "name": conn.name, "machine": conn.machine_id,
                                          "machine_group": conn.machine_group_id, "credential": conn.credential_id,
                                          "status": conn.status, "secret_version": connection_state.version_of(conn)})
        return connection_view(conn)


def _follow_credential(core: Core, s: Session, conn: Connection, cred: Credential) -> None:
    """A connection on ``cred``: ``connected`` at the version its next run receives, or why it cannot be."""
    conn.status, conn.secret_version = ConnectionStatus.CONNECTED, None  # null: it follows its credential
    try:
        delivery.credential_version(core, s, cred)  # readable now (and in the cache)
    except delivery.Undeliverable as exc:
        conn.status = exc.reason


def list_connections(core: Core, actor: Actor, env_id: str, credential: str | None = None,
                     status: str | None = None, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    """One page of the connections the caller sees (its own; all, for system administrators), in the order they
    were made, of one credential (its id) and one status."""
    wanted = connection_status_named(status) if status is not None else None
    credential = lookup.id_filter("credential", credential)
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, role = authz.require_env(s, actor, env_id, "connection.list")
        q = select(Connection).where(Connection.env_id == env.id)
        if not authz.env_allows(role, "connection.admin"):
            q = q.where(Connection.owner_id == actor.id)
        if credential is not None:
            q = q.where(Connection.credential_id == credential)
        if wanted is not None:
            q = q.where(Connection.status == wanted)
        return lookup.seek(s, q, Connection.id, limit=limit, cursor=cursor, view=connection_view)


def page_connections(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the connections the caller sees (its own; all, for system administrators), searched by name,
    sorted by name, status or creation; each with the names of its machine or group (``target_name``), its
    credential (``credential_name``) and its owner (``owner_name``, ``owner_email``)."""
    with core.db.read() as s:
        env, role = authz.require_env(s, actor, env_id, "connection.list")
        q = select(Connection).where(Connection.env_id == env.id)
        if not authz.env_allows(role, "connection.admin"):
            q = q.where(Connection.owner_id == actor.id)
        found = lookup.page(s, q, listing, search=[Connection.name], key=Connection.id, view=connection_view,
                            sorts={"name": Connection.name, "status": Connection.status,
                                   "created": Connection.created_at})
        items = found["items"]
        targets = {**lookup.names_of(s, Machine.name, ((c["target"] or {}).get("machine") for c in items)),
                   **lookup.names_of(s, MachineGroup.name, ((c["target"] or {}).get("machine_group") for c in items))}
        creds = lookup.names_of(s, Credential.name, (c["credential"] for c in items))
        owners = {u.id: u for u in s.scalars(select(User).where(User.id.in_({c["owner"] for c in items})))}
        for c in items:
            target = next(iter((c["target"] or {}).values()), None)
            owner = owners.get(c["owner"])
            c["target_name"] = targets.get(target) if target else None
            c["credential_name"] = creds.get(c["credential"]) if c["credential"] else None
            c["owner_name"], c["owner_email"] = (owner.name, owner.email) if owner else (None, None)
        return found


def get_connection(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        return connection_view(find_connection(s, actor, env.id, role, ref))


def delete_connection(core: Core, actor: Actor, env_id: str, ref: str) -> None:
    """Refused while a run of it is queued or running; its finished runs go with it."""
    with core.db.transaction() as s:
        env, role = authz.environment(s, actor, env_id)
        conn = find_connection(s, actor, env.id, role, ref)
        active = run_state.active_ids(s, Run.connection_id == conn.id)
        if active:
            raise Conflict("runs of this connection are queued or running; cancel them first", code="in_use",
                           dependents={"runs": active})
        run_state.delete_all(s, Run.connection_id == conn.id)
        record(s, actor=actor.label, action="connection.delete", env_id=env.id, object_type="connection",
               object_id=conn.id, detail={"name": conn.name})
        s.delete(conn)
