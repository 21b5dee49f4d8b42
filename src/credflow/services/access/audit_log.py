"""Reading and checking the audit trail.

Records are written by each service with ``credflow.audit.chain.record`` (failed authentications by
``credflow.services.access.failed_auth``, one per address and minute). Here: the environment's trail for its
system administrators, and a verdict on the chain that names each changed, inserted or deleted record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from credflow.audit.chain import GENESIS, verify
from credflow.domain.errors import Malformed
from credflow.persistence import tables as t
from credflow.persistence.tables import AuditRecord, User
from credflow.services import lookup, views
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


def _filtered(s: Session, actor: Actor, env_id: str, object_ids: list[str], who: str | None,
              since: datetime | None, action: str | None, until: datetime | None = None
              ) -> Select[tuple[AuditRecord]]:
    q = select(AuditRecord).where(AuditRecord.env_id == env_id)
    if object_ids:
        q = q.where(AuditRecord.object_id.in_(object_ids))
    if who:
        q = q.where(AuditRecord.actor.in_(_actor_labels(s, actor, who)))
    if since is not None:
        q = q.where(AuditRecord.at >= since)
    if until is not None:
        q = q.where(AuditRecord.at < until)
    if action:
        q = q.where(or_(AuditRecord.action == action, AuditRecord.action.startswith(f"{action}.")))
    return q


def list_records(core: Core, actor: Actor, env_id: str, *, object_id: str | None = None,
                 who: str | None = None, since: datetime | None = None, until: datetime | None = None,
                 action: str | None = None, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    """The environment's records in the order they were written, filtered by object, actor, time and action."""
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= 18):
        raise Malformed("the cursor is not one this list gave", code="malformed_cursor")
    since, until = lookup.time_range(since, until)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "audit.read")
        q = _filtered(s, actor, env.id, [object_id] if object_id else [], who, since, action, until)
        if cursor is not None:
            q = q.where(AuditRecord.seq > int(cursor))
        rows = s.scalars(q.order_by(AuditRecord.seq).limit(limit + 1)).all()
        items = [_view(r) for r in rows[:limit]]
        return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}


# What each kind of object is called by, to show names instead of ids.
NAMED: dict[str, Any] = {
    "cloud_flow": t.CloudFlow.name, "connection": t.Connection.name,
    "connection_reference": t.ConnectionReference.name, "credential": t.Credential.name,
    "desktop_flow": t.DesktopFlow.name, "environment": t.Environment.name,
    "environment_variable": t.EnvironmentVariable.schema_name, "machine": t.Machine.name,
    "machine_group": t.MachineGroup.name, "secret_store": t.SecretStore.name, "solution": t.Solution.unique_name,
    "team": t.Team.name, "user": t.User.email,
}
_ID_LENGTH = 32


def _ids_in(value: Any) -> set[str]:
    """The strings in a record's detail that look like credflow ids."""
    if isinstance(value, str):
        return {value} if len(value) == _ID_LENGTH and all(c in "0123456789abcdef" for c in value) else set()
    if isinstance(value, dict):
        return set().union(*(_ids_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_ids_in(v) for v in value)) if value else set()
    return set()


def _names(s: Session, ids: set[str]) -> dict[str, str]:
    """The names of whatever the ``ids`` are (a run: its desktop flow's name), looked up in the database."""
    names: dict[str, str] = {}
    for column in NAMED.values():
        if ids - names.keys():
            names.update(lookup.names_of(s, column, ids - names.keys()))
    runs = ids - names.keys()
    if runs:
        names.update({rid: f"run of {flow}" for rid, flow in s.execute(
            select(t.Run.id, t.DesktopFlow.name).join(t.DesktopFlow, t.DesktopFlow.id == t.Run.desktop_flow_id)
            .where(t.Run.id.in_(runs))).all()})
    return names


def _named_ids(s: Session, actor: Actor, env_id: str, name: str) -> list[str]:
    """The ids of the objects of the environment called ``name`` (in any case), and of people with that email."""
    found: list[str] = []
    for type_, column in NAMED.items():
        table = column.class_
        q = select(table.id).where(func.lower(column) == name.lower())
        if type_ == "environment":
            q = q.where(table.id == env_id)
        elif type_ == "user":
            q = q.where(table.org_id == actor.org_id)
        else:
            q = q.where(table.env_id == env_id)
        found += s.scalars(q).all()
    return found


def page_records(core: Core, actor: Actor, env_id: str, *, object_ref: str | None = None, who: str | None = None,
                 since: datetime | None = None, action: str | None = None, newest_first: bool = True,
                 after: str | None = None, before: str | None = None, limit: int = 50) -> dict[str, Any]:
    """One page of the environment's trail for the pages, along the record numbers: newest (or oldest) first,
    filtered as ``list_records`` is, the object by its id or its name. Each record has ``actor_name`` and
    ``object_name`` (None when unknown) and ``names``: the names of the ids in its detail. ``next`` and
    ``previous`` are the ``after=`` and ``before=`` of the pages around (None at either end)."""
    for cursor in (after, before):
        if cursor is not None and not cursor.isdigit():
            raise Malformed("the cursor is not one this list gave", code="malformed_cursor")
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "audit.read")
        objects = [object_ref, *_named_ids(s, actor, env.id, object_ref)] if object_ref else []
        q = _filtered(s, actor, env.id, objects, who, since, action)
        rows, more, earlier = lookup.keyset(s, q, AuditRecord.seq, newest_first=newest_first,
                                            after=int(after) if after else None,
                                            before=int(before) if before else None, limit=limit)
        wanted: set[str] = set()
        for r in rows:
            wanted |= _ids_in(r.detail) | _ids_in(r.object_id) | _ids_in(r.actor.partition(":")[2])
        names = _names(s, wanted)
        items = []
        for r in rows:
            view = _view(r)
            kind, _, ident = r.actor.partition(":")
            view["actor_name"] = names.get(ident) if kind in ("user", "machine") else None
            view["object_name"] = names.get(r.object_id or "")
            view["names"] = {i: names[i] for i in _ids_in(r.detail) if i in names}
            items.append(view)
        return {"items": items, "next": items[-1]["id"] if items and more else None,
                "previous": items[0]["id"] if items and earlier else None}


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
