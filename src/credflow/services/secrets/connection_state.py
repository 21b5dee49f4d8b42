"""How connections follow their secret. A connection on a credential keeps a status and, only when it is held
at a version of its own (one caller's notice moved just their connections), that version; otherwise
(``Connection.secret_version`` null) its next run receives the version its credential is at: the pinned version,
else the last verified one for a credential with a verification, else the secret's head. So a new version
moves every connection at once by moving the head: one row, whatever their number; the set-based updates here
write only the connections that were held or ``secret_unreadable`` (partial indexes find them).

- a new version: heads move forward only (builtin versions compare as integers; for other stores the
  vault's current version is the truth), then every connection on the secret gets that version;
- deleted or disabled (the vault says not found / denied): ``secret_unreadable`` at once;
- an outage: the last good version keeps serving, its age visible, until ``stale_if_error_seconds`` have
  passed; then ``secret_unreadable``;
- readable again: back to ``connected``;
- a secret variable pointed at another secret (``follow_reference``): its connections move to that secret's
  version in the transaction that changes the reference (variables and solution import call it directly).
Only unpinned references follow the head; a pinned version stays what it is.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from credflow.audit.chain import record
from credflow.domain.statuses import ConnectionStatus
from credflow.persistence.tables import (
    Connection,
    Credential,
    EnvironmentVariable,
    SecretHead,
    SecretStore,
    utcnow,
)
from credflow.services.core import Core
from credflow.services.secrets import cache, outbox

CONNECTED, UNREADABLE = ConnectionStatus.CONNECTED, ConnectionStatus.SECRET_UNREADABLE
# Written out (not a bound parameter) so that the partial index ix_connections_unreadable serves it.
IS_UNREADABLE = Connection.status == literal_column(f"'{UNREADABLE.value}'")
SYSTEM = "system:rotation"
WORKER = f"{socket.gethostname()}/{os.getpid()}"  # which server process applied a change (audit detail)


def variables_following(store_id: str, names: list[str]) -> Select[tuple[str]]:
    """The secret variables that follow (store, name) unpinned."""
    return select(EnvironmentVariable.id).where(
        EnvironmentVariable.store_id == store_id, EnvironmentVariable.secret_name.in_(names),
        EnvironmentVariable.secret_version.is_(None))


def credentials_using(store_id: str, names: list[str]) -> Select[tuple[str]]:
    """The credentials whose password variable follows (store, name) unpinned (found from the variables, along
    the index of credentials by password variable)."""
    return select(Credential.id).where(Credential.password_variable_id.in_(variables_following(store_id, names)))


def following(store_id: str, names: list[str]) -> Select[tuple[str]]:
    """The credentials whose connections move with the head: those without a verification (the others move
    when their verification passes, ``verification.finished``)."""
    return credentials_using(store_id, names).where(Credential.verification_connection_id.is_(None))


def referenced_names(s: Session, store_id: str, base: str) -> list[str]:
    """The names that unpinned secret variables use for secret ``base``: ``base`` and ``base#FIELD``."""
    rows = s.scalars(select(EnvironmentVariable.secret_name).distinct().where(
        EnvironmentVariable.store_id == store_id, EnvironmentVariable.secret_version.is_(None),
        or_(EnvironmentVariable.secret_name == base,
            EnvironmentVariable.secret_name.startswith(base + "#", autoescape=True)))).all()
    return sorted(n for n in rows if n)


def _rows(s: Session, stmt: Any) -> int:
    return s.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0  # type: ignore[attr-defined,no-any-return]


def set_connections_version(s: Session, creds: Select[tuple[str]], version: str | None,
                            owner_id: str | None = None) -> int:
    """Environment reach (``owner_id`` None): every connection of ``creds`` follows its credential again (held
    versions dropped, ``secret_unreadable`` back to ``connected``); only those rows are written, and their number
    is returned. One caller's reach: their connections of ``creds`` are held at ``version``."""
    now = utcnow()
    mine = update(Connection).where(Connection.credential_id.in_(creds))
    if owner_id is not None:
        stale = or_(Connection.status == UNREADABLE, Connection.secret_version.is_(None)) if version is None else \
            or_(Connection.status == UNREADABLE, Connection.secret_version.is_(None),
                Connection.secret_version != version)
        return _rows(s, mine.where(Connection.owner_id == owner_id, stale).values(
            secret_version=version, updated_at=now,
            status=case((Connection.status == UNREADABLE, CONNECTED), else_=Connection.status)))
    # Found from the partial indexes of the few held or secret_unreadable connections, each checked against
    # ``creds``: never a walk through every connection of every credential (a million of them, or more).
    of_creds = creds.where(Credential.id == Connection.credential_id).exists()
    gone = update(Connection).where(IS_UNREADABLE, of_creds)
    back = _rows(s, gone.values(status=CONNECTED, secret_version=None, updated_at=now))
    held = update(Connection).where(Connection.secret_version.is_not(None), of_creds)
    return back + _rows(s, held.values(secret_version=None, updated_at=now))


def count_connections(s: Session, creds: Select[tuple[str]]) -> int:
    return int(s.scalar(select(func.count()).select_from(Connection).where(Connection.credential_id.in_(creds)))
               or 0)


def count_rows(s: Session, q: Select[tuple[str]]) -> int:
    return int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)


def version_of(conn: Connection) -> str | None:
    """The version the next run of ``conn`` receives (its view's ``secret_version``): the version it is held at,
    else its credential's: pinned, else (with a verification) the last verified one, else the head. One query per
    credential in a session, however many of its connections are shown."""
    if conn.secret_version is not None or conn.credential_id is None:
        return conn.secret_version
    s = object_session(conn)
    if s is None:
        return None
    memo: dict[str, str | None] = s.info.setdefault("credflow_versions", {})
    if conn.credential_id not in memo:
        row = s.execute(
            select(EnvironmentVariable.secret_version, Credential.verification_connection_id,
                   Credential.verified_version, SecretHead.current_version)
            .join(EnvironmentVariable, EnvironmentVariable.id == Credential.password_variable_id)
            .outerjoin(SecretHead, and_(SecretHead.store_id == EnvironmentVariable.store_id,
                                        SecretHead.name == EnvironmentVariable.secret_name))
            .where(Credential.id == conn.credential_id)).first()
        pinned, verifying, verified, head = row if row is not None else (None, None, None, None)
        memo[conn.credential_id] = pinned or (verified if verifying is not None else head)
    return memo[conn.credential_id]


def follow_reference(s: Session, var: EnvironmentVariable) -> int:
    """A secret variable's reference changed (another store or secret, pinned or not): in the caller's
    transaction, every connection of the credentials whose password it is moves to the version their next run
    will get (the pinned version, else the head credflow holds for the new secret). Text variables change
    nothing. Returns the number of connections moved."""
    if var.type != "secret" or not var.store_id or not var.secret_name:
        return 0
    version = var.secret_version
    if version is None:
        h = s.scalar(select(SecretHead).where(SecretHead.store_id == var.store_id,
                                              SecretHead.name == var.secret_name))
        version = h.current_version if h is not None else None
    creds = select(Credential.id).where(Credential.password_variable_id == var.id)
    s.execute(update(Credential).where(Credential.password_variable_id == var.id,
                                       Credential.verification_connection_id.is_not(None))
              .values(verified_version=version).execution_options(synchronize_session=False))
    return set_connections_version(s, creds, version)


def _set_status(s: Session, creds: Select[tuple[str]], from_status: str, to_status: str,
                owner_id: str | None = None) -> int:
    stmt = update(Connection).where(Connection.credential_id.in_(creds), Connection.status == from_status)
    if owner_id is not None:
        stmt = stmt.where(Connection.owner_id == owner_id)
    stmt = stmt.values(status=to_status, updated_at=utcnow()).execution_options(synchronize_session=False)
    return s.execute(stmt).rowcount or 0  # type: ignore[attr-defined]


def lock_head(s: Session, store_id: str, name: str) -> SecretHead:
    """The head row, locked against concurrent workers (PostgreSQL), made if missing."""
    q = select(SecretHead).where(SecretHead.store_id == store_id, SecretHead.name == name).with_for_update()
    row = s.scalar(q)
    if row is None:
        try:
            with s.begin_nested():
                row = SecretHead(store_id=store_id, name=name, version_seq=0)
                s.add(row)
        except IntegrityError:
            row = s.scalar(q)
    assert row is not None
    return row


def newer(kind: str, candidate: str, current: str | None) -> bool:
    if current is None:
        return True
    if kind == "builtin":
        try:
            return int(candidate) > int(current)
        except ValueError:
            return candidate != current
    return candidate != current


def advance(s: Session, store: SecretStore, names: list[str], target: str | None, *, checked: bool,
            source: str, owner_id: str | None = None) -> int:
    """Environment reach (``owner_id`` None): move the heads to ``target`` where it is newer, then every
    connection to the head. One caller's reach: only that caller's connections move, to ``target``; the heads
    and everyone else's connections stay. ``checked``: the vault confirmed ``target`` just now. Returns the
    connection rows written.

    The audit record of a head that moved names ``credentials_following``: the credentials whose connections
    follow it, so every connection of theirs now receives the new version (a count of credentials, not of
    their connections, which would walk every connection of them: a million, say, on each rotation). Any
    other record names ``connections_updated``: the connections written, each moved by itself."""
    now, written = utcnow(), 0
    for name in names:
        h = lock_head(s, store.id, name)
        previous, recovered = h.current_version, owner_id is None and checked and h.error_code is not None
        version = h.current_version
        if owner_id is None:
            if target is not None and newer(store.kind, target, previous):
                h.current_version, h.version_seq = target, h.version_seq + 1
            if checked:
                h.checked_at, h.error_code, h.error_since = now, None, None
            version = h.current_version
        elif checked and target is not None:
            version = target
        moved = set_connections_version(s, following(store.id, [name]), version, owner_id)
        written += moved
        reach: dict[str, Any] = {"connections_updated": moved}
        if owner_id is None and previous != h.current_version:
            reach = {"credentials_following": count_rows(s, following(store.id, [name]))}
        if moved or previous != h.current_version or recovered:
            record(s, actor=SYSTEM, action="secret.version_changed", env_id=store.env_id, object_type="secret",
                   object_id=store.id, detail={"store": store.id, "name": name, "from_version": previous,
                                               "to_version": version, "source": source, **reach,
                                               "reach": owner_id or "environment", "worker": WORKER})
    return written


def unreadable(s: Session, store: SecretStore, names: list[str], code: str, owner_id: str | None = None) -> int:
    """The vault says the secret is gone or closed to us: its connections stop at once."""
    now, total = utcnow(), 0
    for name in names:
        h = lock_head(s, store.id, name)
        if h.error_code != code:
            h.error_code, h.error_since = code, now
        changed = _set_status(s, credentials_using(store.id, [name]), CONNECTED, UNREADABLE, owner_id)
        total += changed
        if changed:
            record(s, actor=SYSTEM, action="secret.unreadable", env_id=store.env_id, object_type="secret",
                   object_id=store.id, detail={"store": store.id, "name": name, "reason": code,
                                               "connections_updated": changed})
    return total


def failing(core: Core, s: Session, store: SecretStore, names: list[str], code: str) -> None:
    """The vault fails (outage, throttling): keep serving the last good version, and say since when."""
    now, started = utcnow(), False
    for name in names:
        h = lock_head(s, store.id, name)
        if h.error_code is None or h.error_code in cache.HARD_ERRORS:
            h.error_code, h.error_since, started = code, now, True
            record(s, actor=SYSTEM, action="secret.stale", env_id=store.env_id, object_type="secret",
                   object_id=store.id, detail={"store": store.id, "name": name, "reason": code,
                                               "serving_version": h.current_version,
                                               **cache.freshness(h, now)})
        elif h.error_code != code:
            h.error_code = code
    if started:  # the pollers time the stale bound from now
        core.emit_on_commit(s, outbox.POLLS_CHANGED)
    s.flush()
    enforce_stale_bound(core, s, store.id)


def enforce_stale_bound(core: Core, s: Session, store_id: str | None = None) -> int:
    """Past ``stale_if_error_seconds`` of failure, a secret's connections turn secret_unreadable."""
    cutoff = utcnow() - timedelta(seconds=core.settings.stale_if_error_seconds)
    q = select(SecretHead).where(SecretHead.error_code.is_not(None), SecretHead.error_since < cutoff,
                                 SecretHead.error_code.not_in(list(cache.HARD_ERRORS)))
    if store_id is not None:
        q = q.where(SecretHead.store_id == store_id)
    total = 0
    for h in s.scalars(q).all():
        changed = _set_status(s, credentials_using(h.store_id, [h.name]), CONNECTED, UNREADABLE)
        total += changed
        if changed:
            store = s.get(SecretStore, h.store_id)
            record(s, actor=SYSTEM, action="secret.unreadable", env_id=store.env_id if store else None,
                   object_type="secret", object_id=h.store_id,
                   detail={"store": h.store_id, "name": h.name, "reason": "stale_bound_exceeded",
                           "vault_error": h.error_code, "serving_version": h.current_version,
                           "connections_updated": changed, **cache.freshness(h)})
    return total


def freshness_of(conn: Connection) -> dict[str, Any]:
    """The freshness of the secret a connection's runs receive, for its view. The first call in a session
    reads the whole environment's secrets in one query, so a list of thousands of connections stays cheap."""
    s = object_session(conn)
    if s is None or conn.credential_id is None:
        return cache.freshness(None)
    memo: dict[str, dict[str, Any]] | None = s.info.get("credflow_freshness", {}).get(conn.env_id)
    if memo is None:
        rows = s.execute(
            select(Credential.id, SecretHead)
            .join(EnvironmentVariable, EnvironmentVariable.id == Credential.password_variable_id)
            .join(SecretHead, and_(SecretHead.store_id == EnvironmentVariable.store_id,
                                   SecretHead.name == EnvironmentVariable.secret_name))
            .where(Credential.env_id == conn.env_id)).all()
        now = utcnow()
        memo = {cred_id: cache.freshness(h, now) for cred_id, h in rows}
        s.info.setdefault("credflow_freshness", {})[conn.env_id] = memo
    return memo.get(conn.credential_id) or cache.freshness(None)
