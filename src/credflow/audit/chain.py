"""The audit trail: append-only records, each holding the hash of the one before it.

A record names who did what to which object, never a secret value: callers pass identifiers and versions
only, and ``detail`` is checked for the markers of a value before it is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from credflow.persistence.tables import AuditRecord, utcnow

GENESIS = "0" * 64
_FORBIDDEN_KEYS = {"value", "password", "secret", "token", "client_secret", "secret_id", "secret_access_key"}


def _digest(prev_hash: str, at: datetime, actor: str, action: str, object_type: str | None,
            object_id: str | None, detail: dict[str, Any], env_id: str | None) -> str:
    body = json.dumps(
        [prev_hash, at.isoformat(), actor, action, object_type, object_id, detail, env_id],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(session: Session, *, actor: str, action: str, env_id: str | None = None,
           object_type: str | None = None, object_id: str | None = None,
           detail: dict[str, Any] | None = None) -> AuditRecord:
    detail = dict(detail or {})
    leaked = _FORBIDDEN_KEYS & set(detail)
    if leaked:
        raise ValueError(f"an audit record may not carry {sorted(leaked)}")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7446001)"))  # one writer extends the chain at a time
    last = session.execute(select(AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).scalar()
    prev = last or GENESIS
    at = utcnow()
    row = AuditRecord(env_id=env_id, at=at, actor=actor, action=action, object_type=object_type,
                      object_id=object_id, detail=detail, prev_hash=prev,
                      hash=_digest(prev, at, actor, action, object_type, object_id, detail, env_id))
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str  # "changed" | "inserted_or_deleted"


def verify(session: Session) -> list[ChainProblem]:
    """Walk the chain and report each record whose content or link does not hold."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    for row in session.scalars(select(AuditRecord).order_by(AuditRecord.seq)):
        if row.prev_hash != prev:
            problems.append(ChainProblem(row.seq, "inserted_or_deleted"))
        expected = _digest(row.prev_hash, row.at, row.actor, row.action, row.object_type, row.object_id,
                           row.detail, row.env_id)
        if row.hash != expected:
            problems.append(ChainProblem(row.seq, "changed"))
        prev = row.hash
    return problems
