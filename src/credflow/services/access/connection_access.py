"""What a change of access does to connections: a connection whose owner may no longer use its credential turns
``access_revoked``, and returns to ``connected`` when access comes back.

Asked in the transaction of the change that causes it: an unshare or a share (``catalog.sharing``), a team's
membership (``access.teams``), and a user's roles being taken away, the user disabled or removed
(``access.users``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.domain.statuses import ConnectionStatus
from credflow.persistence.tables import Connection, Credential, CredentialShare, utcnow
from credflow.services.access import authz

ACCESS_REVOKED = ConnectionStatus.ACCESS_REVOKED
CONNECTED = ConnectionStatus.CONNECTED
_KEEP = {ConnectionStatus.CREDENTIAL_DELETED}  # statuses access does not decide


def refresh_access(s: Session, credential_id: str) -> list[str]:
    """Recompute ``access_revoked`` / ``connected`` for every connection of a credential, in the caller's
    transaction. Returns the ids of the connections whose status changed."""
    cred = s.get(Credential, credential_id)
    if cred is None:
        return []
    allowed: dict[str, bool] = {}
    changed: list[str] = []
    conns = s.scalars(select(Connection).where(Connection.credential_id == cred.id).order_by(Connection.id))
    for conn in conns.all():
        if conn.status in _KEEP:
            continue
        if conn.owner_id not in allowed:
            allowed[conn.owner_id] = authz.may_use_credential(s, conn.owner_id, cred)
        if not allowed[conn.owner_id] and conn.status != ACCESS_REVOKED:
            conn.status = ACCESS_REVOKED
        elif allowed[conn.owner_id] and conn.status == ACCESS_REVOKED:
            conn.status = CONNECTED
        else:
            continue
        conn.updated_at = utcnow()
        changed.append(conn.id)
    return changed


def refresh_principal(s: Session, principal_id: str) -> list[str]:
    """``refresh_access`` for every credential shared with a principal (after a team's membership changes)."""
    cred_ids = s.scalars(select(CredentialShare.credential_id)
                         .where(CredentialShare.principal_id == principal_id)).all()
    return [conn for cid in cred_ids for conn in refresh_access(s, cid)]


def refresh_owner(s: Session, user_id: str) -> list[str]:
    """``refresh_access`` for the credential of every connection a user owns (after the user's roles change)."""
    cred_ids = s.scalars(select(Connection.credential_id).distinct()
                         .where(Connection.owner_id == user_id, Connection.credential_id.is_not(None))).all()
    return [conn for cid in cred_ids if cid is not None for conn in refresh_access(s, cid)]
