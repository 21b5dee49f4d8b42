"""Dependencies: where an environment variable or a credential is used (the seed's "Show dependencies").

The rule, in one place: an environment variable is used by the credentials that name it, by the connections of
those credentials, and by the cloud flows whose actions go through a connection reference bound to one of those
connections. A credential is used by its connections and, the same way, by cloud flows.

One secret may sit behind 100,000 connections, so connections come a page at a time (ordered by credential,
then by creation) with their total count; credentials and cloud flows, few by nature, come whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from credflow.domain.errors import Malformed
from credflow.domain.roles import EnvironmentRole, env_allows
from credflow.persistence.tables import (
    CloudFlow,
    Connection,
    ConnectionReference,
    Credential,
    EnvironmentVariable,
    User,
)
from credflow.services.access import authz
from credflow.services.core import Actor, Core

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _cursor(cursor: str | None) -> tuple[str, str] | None:
    """A cursor is ``<credential id>.<connection id>``: the last connection of the previous page."""
    if not cursor:
        return None
    cred_id, _, conn_id = cursor.partition(".")
    if not _ID.match(cred_id) or not _ID.match(conn_id):
        raise Malformed("the cursor is not one this server handed out", code="malformed_cursor")
    return cred_id, conn_id


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Malformed(f"limit is between 1 and {MAX_LIMIT}", code="malformed_limit")
    return limit


def _connections_page(s: Session, credential_ids: Sequence[str], owner_id: str | None, limit: int,
                      cursor: tuple[str, str] | None) -> tuple[list[dict[str, Any]], str | None]:
    # One index range per credential on (credential_id, id): a page costs the same at 10 or 100,000 connections.
    rows: list[Any] = []
    for cred_id in sorted(credential_ids):
        if cursor is not None and cred_id < cursor[0]:
            continue
        q = select(Connection.id, Connection.name, Connection.owner_id, Connection.status,
                   Connection.credential_id).where(Connection.credential_id == cred_id)
        if owner_id is not None:
            q = q.where(Connection.owner_id == owner_id)
        if cursor is not None and cred_id == cursor[0]:
            q = q.where(Connection.id > cursor[1])
        rows.extend(s.execute(q.order_by(Connection.id).limit(limit + 1 - len(rows))).all())
        if len(rows) > limit:
            break
    more, rows = len(rows) > limit, rows[:limit]
    owners = {r.owner_id for r in rows}
    emails: dict[str, str] = {u.id: u.email for u in s.execute(
        select(User.id, User.email).where(User.id.in_(owners))).all()} if owners else {}
    items = [{"id": r.id, "name": r.name, "owner": r.owner_id, "owner_email": emails.get(r.owner_id),
              "credential": r.credential_id, "status": r.status} for r in rows]
    return items, (f"{rows[-1].credential_id}.{rows[-1].id}" if more else None)


def _count_connections(s: Session, credential_ids: Sequence[str], owner_id: str | None) -> dict[str, int]:
    # One count per credential: each is an index-only range, where one count over all of them may turn into a
    # (parallel) scan of the whole table once they hold most of it.
    counts = {}
    for cred_id in credential_ids:
        q = select(func.count()).select_from(Connection).where(Connection.credential_id == cred_id)
        if owner_id is not None:
            q = q.where(Connection.owner_id == owner_id)
        counts[cred_id] = int(s.scalar(q) or 0)
    return counts


def _cloud_flows(s: Session, env_id: str, credential_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Cloud flows with an action whose connection reference is bound to a connection of the credentials."""
    if not credential_ids:
        return []
    refs = s.execute(select(ConnectionReference.id, ConnectionReference.name)
                     .join(Connection, Connection.id == ConnectionReference.connection_id)
                     .where(ConnectionReference.env_id == env_id,
                            Connection.credential_id.in_(credential_ids))).all()
    names = {r.id for r in refs} | {r.name for r in refs}
    if not names:
        return []
    flows = s.execute(select(CloudFlow.id, CloudFlow.name, CloudFlow.actions)
                      .where(CloudFlow.env_id == env_id).order_by(CloudFlow.id)).all()
    return [{"id": f.id, "name": f.name} for f in flows
            if any(isinstance(a, dict) and a.get("connection_reference") in names for a in f.actions or [])]


def cloud_flows_naming(s: Session, env_id: str, key: str, row_id: str) -> list[dict[str, Any]]:
    """The cloud flows of the environment with an action whose ``key`` (``desktop_flow`` or
    ``connection_reference``) is ``row_id``."""
    return [{"id": f.id, "name": f.name} for f in s.scalars(select(CloudFlow).where(CloudFlow.env_id == env_id))
            if any(a.get(key) == row_id for a in f.actions)]


def _result(s: Session, env_id: str, credential_ids: list[str], owner_id: str | None, limit: int,
            cursor: str | None) -> tuple[dict[str, Any], dict[str, int]]:
    connections, next_cursor = _connections_page(s, credential_ids, owner_id, _limit(limit), _cursor(cursor))
    flows = _cloud_flows(s, env_id, credential_ids)
    per_credential = _count_connections(s, credential_ids, owner_id)
    return {"connections": connections, "cloud_flows": flows, "next_cursor": next_cursor,
            "counts": {"connections": sum(per_credential.values()), "cloud_flows": len(flows)}}, per_credential


def of_variable(s: Session, var: EnvironmentVariable, *, owner_id: str | None = None,
                limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict[str, Any]:
    creds = s.execute(select(Credential.id, Credential.name).where(
        or_(Credential.username_variable_id == var.id, Credential.password_variable_id == var.id))
        .order_by(Credential.id)).all()
    out, per_credential = _result(s, var.env_id, [c.id for c in creds], owner_id, limit, cursor)
    out["credentials"] = [{"id": c.id, "name": c.name, "connections": per_credential[c.id]} for c in creds]
    out["counts"]["credentials"] = len(creds)
    return out


def of_credential(s: Session, cred: Credential, *, owner_id: str | None = None,
                  limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict[str, Any]:
    return _result(s, cred.env_id, [cred.id], owner_id, limit, cursor)[0]


def _owner_filter(actor: Actor, role: EnvironmentRole) -> str | None:
    """Makers and administrators see every connection; anyone else only their own."""
    return None if env_allows(role, "solution.read") else actor.id


def variable_dependencies(core: Core, actor: Actor, env_id: str, ref: str, limit: int = DEFAULT_LIMIT,
                          cursor: str | None = None) -> dict[str, Any]:
    with core.db.read() as s:
        var, role = authz.variable(s, actor, env_id, ref)
        return of_variable(s, var, owner_id=_owner_filter(actor, role), limit=limit, cursor=cursor)


def credential_dependencies(core: Core, actor: Actor, env_id: str, cred_ref: str, limit: int = DEFAULT_LIMIT,
                            cursor: str | None = None) -> dict[str, Any]:
    with core.db.read() as s:
        _, role = authz.environment(s, actor, env_id)
        cred, _ = authz.credential(s, actor, env_id, cred_ref, "view")
        return of_credential(s, cred, owner_id=_owner_filter(actor, role), limit=limit, cursor=cursor)
