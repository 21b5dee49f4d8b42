"""The audit trail: append-only records, each holding the hash of the one before it.

A record names who did what to which object, never a secret value: callers pass identifiers and versions
only, and ``detail`` is checked for the markers of a value before it is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, text
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


_BATCH = "credflow.audit.batch"
_TABLE = cast(Table, AuditRecord.__table__)
_COLUMNS = ("env_id", "at", "actor", "action", "object_type", "object_id", "detail", "prev_hash", "hash")


def record(session: Session, *, actor: str, action: str, env_id: str | None = None,
           object_type: str | None = None, object_id: str | None = None,
           detail: dict[str, Any] | None = None) -> AuditRecord:
    """Append a record. Inside ``batched(session)`` it is chained and written when the batch ends (its ``seq`` and
    ``hash`` are set then)."""
    detail = dict(detail or {})
    leaked = _FORBIDDEN_KEYS & set(detail)
    if leaked:
        raise ValueError(f"an audit record may not carry {sorted(leaked)}")
    row = AuditRecord(env_id=env_id, at=utcnow(), actor=actor, action=action, object_type=object_type,
                      object_id=object_id, detail=detail)
    pending: list[AuditRecord] | None = session.info.get(_BATCH)
    if pending is not None:
        pending.append(row)
    else:
        _append(session, [row])
    return row


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """The records written inside are chained and inserted together when it ends without an error: one read of
    the chain's end and one insert for all of them, in the order they were written."""
    pending: list[AuditRecord] = []
    session.info[_BATCH] = pending
    try:
        yield
    finally:
        session.info.pop(_BATCH, None)
    if pending:
        _append(session, pending)


def _append(session: Session, rows: list[AuditRecord]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7446001)"))  # one writer extends the chain at a time
    last = session.execute(select(AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).scalar()
    prev = last or GENESIS
    for row in rows:
        row.prev_hash = prev
        row.hash = prev = _digest(prev, row.at, row.actor, row.action, row.object_type, row.object_id, row.detail,
                                  row.env_id)
    # One statement for all of them, in order (their ``seq`` follows it); the rows themselves stay out of the
    # session, which need not track what is never changed.
    session.execute(insert(_TABLE), [{c: getattr(row, c) for c in _COLUMNS} for row in rows])


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
