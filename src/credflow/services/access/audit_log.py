"""Reading and checking the audit trail.

Records are written by each service with ``credflow.audit.chain.record`` (failed authentications by
``credflow.services.access.failed_auth``, one per address and minute). Here: the environment's trail for its
system administrators, and a verdict on the chain that names each changed, inserted or deleted record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from credflow.audit.chain import GENESIS, verify
from credflow.domain.errors import Malformed
from credflow.persistence.tables import AuditRecord, User
from credflow.services import views
from credflow.services.access import authz
from credflow.services.core import Actor, Core


def _view(row: AuditRecord) -> dict[str, Any]:
    return {"id": str(row.seq), "seq": row.seq, "at": views.ts(row.at), "actor": row.actor, "action": row.action,
            "object_type": row.object_type, "object_id": row.object_id, "detail": row.detail,
            "environment": row.env_id, "prev_hash": row.prev_hash, "hash": row.hash}


def _actor_labels(s: Session, actor: Actor, who: str) -> list[str]:
    """``who`` is an actor label (``user:ID``, ``machine:ID``), a user or machine id, or a user's email."""
    if ":" in who:
        return [who]
    labels = [f"user:{who}", f"machine:{who}", who]
    user = s.scalar(select(User).where(func.lower(User.email) == who.lower(), User.org_id == actor.org_id))
    if user is not None:
        labels.append(f"user:{user.id}")
    return labels


def list_records(core: Core, actor: Actor, env_id: str, *, object_id: str | None = None,
                 who: str | None = None, since: datetime | None = None, action: str | None = None,
                 limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    """The environment's records in the order they were written, filtered by object, actor, time and action."""
    if cursor is not None and not cursor.isdigit():
        raise Malformed("the cursor is not one this list gave", code="malformed_cursor")
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "audit.read")
        q = select(AuditRecord).where(AuditRecord.env_id == env.id)
        if object_id:
            q = q.where(AuditRecord.object_id == object_id)
        if who:
            q = q.where(AuditRecord.actor.in_(_actor_labels(s, actor, who)))
        if since is not None:
            q = q.where(AuditRecord.at >= since)
        if action:
            q = q.where(or_(AuditRecord.action == action, AuditRecord.action.startswith(f"{action}.")))
        if cursor is not None:
            q = q.where(AuditRecord.seq > int(cursor))
        rows = s.scalars(q.order_by(AuditRecord.seq).limit(limit + 1)).all()
        items = [_view(r) for r in rows[:limit]]
        return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}


@dataclass(frozen=True)
class Finding:
    seq: int
    kind: str  # "changed" | "inserted" | "deleted" | "broken_link" | "truncated"
    message: str


def chain_head(core: Core) -> str | None:
    """``SEQ:HASH`` of the last record: kept outside credflow, it later proves nothing was cut off the end."""
    with core.db.read() as s:
        row = s.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
    return f"{row.seq}:{row.hash}" if row else None


def _anchor_findings(rows: list[Any], anchor: str) -> list[Finding]:
    seq_text, _, digest = anchor.partition(":")
    seq = int(seq_text)
    held = next((r for r in rows if r.seq == seq), None)
    if held is None:
        return [Finding(seq, "truncated", f"record {seq}, the head you kept, is gone: records were cut off the end")]
    if held.hash != digest:
        return [Finding(seq, "changed", f"record {seq} no longer has the hash you kept for it")]
    return []


def check_chain(core: Core, anchor: str | None = None) -> tuple[int, list[Finding]]:
    """The number of records and what is wrong with the chain, one finding per changed, inserted or deleted
    record (a deletion is reported at the record after the gap). ``anchor`` is a head (``SEQ:HASH``) kept
    from an earlier ``chain_head``: records cut off the end since then are found too."""
    with core.db.read() as s:
        problems = verify(s)
        rows = s.execute(select(AuditRecord.seq, AuditRecord.prev_hash, AuditRecord.hash)
                         .order_by(AuditRecord.seq)).all()
    position = {r.seq: i for i, r in enumerate(rows)}
    changed = {p.seq for p in problems if p.problem == "changed"}
    findings: list[Finding] = []
    inserted: set[int] = set()
    unlinked = sorted(p.seq for p in problems if p.problem == "inserted_or_deleted")
    for seq in unlinked:
        if seq in inserted or (position[seq] and rows[position[seq] - 1].seq in inserted):
            continue  # the record after an inserted one links past it
        i = position[seq]
        before = rows[i - 1] if i else None
        after = rows[i + 1] if i + 1 < len(rows) else None
        before_hash = before.hash if before else GENESIS
        if (after is not None and after.prev_hash == before_hash) or (after is None and seq in changed):
            inserted.add(seq)
            findings.append(Finding(seq, "inserted", f"record {seq} was inserted: the chain does not pass "
                                                     "through it"))
            continue
        before_seq = before.seq if before else 0
        missing = list(range(before_seq + 1, seq))
        if missing:
            gone = f"record {missing[0]} was" if len(missing) == 1 else f"records {missing[0]}-{missing[-1]} were"
            findings.append(Finding(seq, "deleted", f"{gone} deleted: record {seq} links to a record that is gone"))
        else:
            findings.append(Finding(seq, "broken_link", f"record {seq} does not link to record {before_seq}: "
                                                        "a record was deleted or the one before rewritten"))
    findings += [Finding(seq, "changed", f"record {seq} was changed: its content does not match its hash")
                 for seq in sorted(changed - inserted)]
    if anchor:
        findings += _anchor_findings(list(rows), anchor)
    return len(rows), sorted(findings, key=lambda f: (f.seq, f.kind))
