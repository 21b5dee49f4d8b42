"""What a run receives: the connection's username and password, resolved at claim time.

A credential's username is its text environment variable's value and its password the secret variable's
secret, read through the version cache (the vault is asked only for a version credflow lacks). A connection
without a credential carries both values sealed under the barrier. Nothing here is ever logged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session, aliased

from credflow.domain.statuses import ConnectionStatus
from credflow.persistence.tables import (
    CachedSecret,
    Connection,
    Credential,
    DesktopFlow,
    EnvironmentRoleGrant,
    EnvironmentVariable,
    Run,
    SecretStore,
    User,
)
from credflow.services.access import authz
from credflow.services.core import Core
from credflow.services.secrets import cache
from credflow.stores.base import StoreError


class Undeliverable(Exception):
    """The run cannot receive its credential; ``reason`` is the connection status that says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Delivered:
    username: str
    password: str
    version: str | None
    credential_id: str | None

    def __repr__(self) -> str:  # never show the values
        return f"Delivered(version={self.version!r}, credential_id={self.credential_id!r})"


def username_aad(conn_id: str) -> str:
    return f"connection:{conn_id}:username"


def password_aad(conn_id: str) -> str:
    return f"connection:{conn_id}:password"


@dataclass(frozen=True)
class Loaded:
    """Every row a delivery (or the scrubbing of a log) reads, loaded by ``load`` in one statement. Held, they are
    the session's: its ``get`` of any of them answers without asking the database again."""

    conn: Connection | None
    flow: DesktopFlow | None = None
    rows: tuple[object, ...] = ()
    cached: CachedSecret | None = None


_USER_VAR, _PASS_VAR = aliased(EnvironmentVariable), aliased(EnvironmentVariable)
_OWNER, _STARTER = aliased(User), aliased(User)


@functools.cache
def _load_query(flow: bool, users: bool, version: bool) -> Select[Any]:
    """Built once per shape (building it costs more than running it); the ids are bound parameters."""
    q = (select(Connection, Credential, _USER_VAR, _PASS_VAR, SecretStore)
         .outerjoin(Credential, Credential.id == Connection.credential_id)
         .outerjoin(_USER_VAR, _USER_VAR.id == Credential.username_variable_id)
         .outerjoin(_PASS_VAR, _PASS_VAR.id == Credential.password_variable_id)
         .outerjoin(SecretStore, SecretStore.id == _PASS_VAR.store_id)
         .where(Connection.id == bindparam("conn_id")))
    if flow:
        q = q.add_columns(DesktopFlow).outerjoin(DesktopFlow, DesktopFlow.id == bindparam("flow_id"))
    if users:
        owner_role = (select(EnvironmentRoleGrant.role).where(EnvironmentRoleGrant.user_id == Connection.owner_id,
                                                              EnvironmentRoleGrant.env_id == Connection.env_id)
                      .scalar_subquery())
        q = (q.add_columns(_OWNER, _STARTER, owner_role).outerjoin(_OWNER, _OWNER.id == Connection.owner_id)
             .outerjoin(_STARTER, _STARTER.id == bindparam("starter_id")))
    if version:
        q = q.add_columns(CachedSecret).outerjoin(CachedSecret, and_(
            CachedSecret.store_id == _PASS_VAR.store_id, CachedSecret.name == _PASS_VAR.secret_name,
            CachedSecret.version == bindparam("version")))
    # Rows the session holds already (read before a claim locked the credential) are read anew.
    return q.execution_options(populate_existing=True)


def load(s: Session, conn_id: str, flow_id: str | None = None, run: Run | None = None,
         version: str | None = None) -> Loaded:
    """The connection with its credential, the credential's two variables and the password's store, and, when
    given, the desktop flow, the run's starter and the connection's owner, and the cached value of the password at
    ``version``: one statement where each would be one ``get``."""
    q = _load_query(flow_id is not None, run is not None, version is not None)
    row = s.execute(q, {"conn_id": conn_id, "flow_id": flow_id, "version": version,
                        "starter_id": run.created_by if run is not None else None}).first()
    if row is None:
        return Loaded(None)
    found = tuple(row)
    if run is not None:  # the connection owner's role, which the use chain's checks ask for
        conn = found[0]
        authz.knew_role(s, conn.owner_id, conn.env_id, found[8 if flow_id is not None else 7])
    return Loaded(found[0], found[5] if flow_id is not None else None, found,
                  found[-1] if version is not None else None)


def _password_variable(s: Session, cred: Credential) -> tuple[EnvironmentVariable, SecretStore]:
    var = s.get(EnvironmentVariable, cred.password_variable_id)
    store = s.get(SecretStore, var.store_id) if var is not None and var.store_id else None
    if var is None or store is None or not var.secret_name:
        raise Undeliverable(ConnectionStatus.SECRET_UNREADABLE,
                            "the credential's secret variable names no readable secret")
    return var, store


def _check_chain(s: Session, run: Run, conn: Connection, cred: Credential | None, flow: DesktopFlow,
                 store: SecretStore | None) -> None:
    broken = authz.use_chain_break(s, run, conn, cred, flow, store)
    if broken is not None:
        raise Undeliverable(*broken)


def credential_version(core: Core, s: Session, cred: Credential) -> str:
    """The version the next run of a connection on ``cred`` receives (raises Undeliverable)."""
    var, store = _password_variable(s, cred)
    held = cred.verified_version if cred.verification_connection_id is not None else None
    try:
        return cache.resolve(core, s, store, var.secret_name or "", var.secret_version or held).version
    except StoreError as exc:
        raise Undeliverable(ConnectionStatus.SECRET_UNREADABLE, f"the secret cannot be read ({exc.code})") from None


def resolve(core: Core, s: Session, run: Run, conn: Connection, flow: DesktopFlow) -> Delivered:
    """The values ``run`` of ``conn`` receives now, or Undeliverable with the reason. The whole use chain is
    checked first (``authz.use_chain_break``): nothing is opened for a run whose chain is broken."""
    if conn.status != ConnectionStatus.CONNECTED:
        raise Undeliverable(conn.status, f"the connection's status is {conn.status}")
    if conn.credential_id is None:
        if conn.sealed_username is None or conn.sealed_password is None:
            raise Undeliverable(ConnectionStatus.CREDENTIAL_DELETED, "the connection's credential was deleted")
        _check_chain(s, run, conn, None, flow, None)
        return Delivered(core.barrier.open(s, conn.sealed_username, username_aad(conn.id)),
                         core.barrier.open(s, conn.sealed_password, password_aad(conn.id)), None, None)
    cred = s.get(Credential, conn.credential_id)
    if cred is None:
        raise Undeliverable(ConnectionStatus.CREDENTIAL_DELETED, "the connection's credential was deleted")
    var, store = _password_variable(s, cred)
    _check_chain(s, run, conn, cred, flow, store)
    user_var = s.get(EnvironmentVariable, cred.username_variable_id)
    try:
        # The connection's version: rotation moves it (for a non-administrator's notice, only on their own); a
        # verification run receives the version it checks.
        held = cred.verified_version if cred.verification_connection_id is not None else None
        version = var.secret_version or run.verifies_version or conn.secret_version or held
        got = cache.resolve(core, s, store, var.secret_name or "", version)
    except StoreError as exc:
        raise Undeliverable(ConnectionStatus.SECRET_UNREADABLE, f"the secret cannot be read ({exc.code})") from None
    username = (user_var.value or "") if user_var is not None else ""
    return Delivered(username, got.value, got.version, cred.id)


def values_for_scrub(core: Core, s: Session, conn: Connection, version: str | None,
                     loaded: Loaded | None = None) -> list[str]:
    """The values a finished run may have printed, read without asking any vault (best effort). ``loaded``: the
    connection's rows as ``load`` gave them with ``version``, when the caller has them."""
    try:
        if conn.credential_id is None:
            if conn.sealed_username is None or conn.sealed_password is None:
                return []
            return [core.barrier.open(s, conn.sealed_username, username_aad(conn.id)),
                    core.barrier.open(s, conn.sealed_password, password_aad(conn.id))]
        loaded = loaded or load(s, conn.id, version=version)
        cred = s.get(Credential, conn.credential_id)
        if cred is None:
            return []
        user_var = s.get(EnvironmentVariable, cred.username_variable_id)
        out = [user_var.value or ""] if user_var is not None else []
        var = s.get(EnvironmentVariable, cred.password_variable_id)
        if var is not None and var.store_id and var.secret_name and version:
            row = loaded.cached
            hit = (cache.opened(core, s, row) if row is not None and (row.store_id, row.name) == (
                var.store_id, var.secret_name) else cache.cached(core, s, var.store_id, var.secret_name, version))
            if hit is not None:
                out.append(hit.value)
        return out
    except Exception:  # noqa: BLE001 - scrubbing is a second line of defence; the agent masks first
        return []
