"""Runs of desktop flows: queued per target, handed to one machine, timed out and cancelled.

A run waits in its target's queue (a machine, or a machine group whose free members take runs in FIFO
order) until a machine claims it (see ``dispatch``). A user may cancel it (``cancelled``); it fails when it
waits or runs longer than its timeout (default 3 h, at most 24 h), or when its machine stops being seen. Time
this server process was not running does not count as a machine unseen: after a start every machine has the
whole delay to get in touch again.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, Malformed, NotFound, RuleViolation
from credflow.domain.statuses import RunStatus, run_status_named
from credflow.persistence.tables import Connection, Credential, DesktopFlow, Machine, Run, User, utcnow
from credflow.services import lookup
from credflow.services.access import authz
from credflow.services.automation import leases, run_state
from credflow.services.automation.connections import connection_to_use
from credflow.services.automation.desktop_flows import find_desktop_flow
from credflow.services.automation.machines import members
from credflow.services.automation.run_state import ACTIVE, run_view
from credflow.services.core import Actor, Core

DEFAULT_TIMEOUT = 3 * 3600
MAX_TIMEOUT = 24 * 3600


def candidates(s: Session, conn: Connection) -> list[str]:
    """The machines that may take runs of ``conn``."""
    if conn.machine_id:
        return [conn.machine_id]
    return members(s, conn.machine_group_id) if conn.machine_group_id else []


def check_timeout(timeout_seconds: int | None) -> int:
    if timeout_seconds is None:
        return DEFAULT_TIMEOUT
    if not 1 <= timeout_seconds <= MAX_TIMEOUT:
        raise RuleViolation(f"timeout_seconds is between 1 and {MAX_TIMEOUT} (24 h)", code="invalid_timeout")
    return timeout_seconds


def queue_run(s: Session, actor_label: str, flow: DesktopFlow, conn: Connection, created_by: str | None,
              timeout_seconds: int, cloud_flow_id: str | None = None) -> tuple[Run, list[str]]:
    """Queue a run of ``flow`` on ``conn`` started by ``created_by``. The links of the use chain that can be
    known now are checked now (the whole chain again at claim time)."""
    authz.require_connection_use(s, created_by, conn)
    cred = s.get(Credential, conn.credential_id) if conn.credential_id else None
    if cred is not None:
        authz.require_flow_allowed(cred, flow)
    if not conn.machine_id and not conn.machine_group_id:
        raise RuleViolation(f"connection {conn.name!r} has no machine or machine group any more",
                            code="connection_has_no_target")
    now = utcnow()
    run = Run(env_id=conn.env_id, desktop_flow_id=flow.id, connection_id=conn.id, cloud_flow_id=cloud_flow_id,
              status=RunStatus.QUEUED, timeout_seconds=timeout_seconds, created_by=created_by, queued_at=now,
              deadline_at=now + timedelta(seconds=timeout_seconds))
    s.add(run)
    s.flush()
    leases.note_queued(s, run, conn)
    record(s, actor=actor_label, action="run.queue", env_id=conn.env_id, object_type="run", object_id=run.id,
           detail={"desktop_flow": flow.id, "connection": conn.id, "cloud_flow": cloud_flow_id})
    return run, candidates(s, conn)


def signal_queued(core: Core, machine_ids: list[str], count: int = 1, s: Session | None = None) -> None:
    """Wake up to ``count`` machines among ``machine_ids`` that wait for a job, on every server process: when
    ``s`` (the transaction that queued the runs) commits, or now without it."""
    if machine_ids and count:
        if s is not None:
            core.emit_on_commit(s, "runs_queued", machine_ids, count)
        else:
            core.emit("runs_queued", machine_ids, count)


def create_run(core: Core, actor: Actor, env_id: str, desktop_flow: str, connection: str,
               timeout_seconds: int | None = None) -> dict[str, Any]:
    timeout = check_timeout(timeout_seconds)
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "run.create")
        authz.require_env(s, actor, env.id, "desktop_flow.read")
        flow = find_desktop_flow(s, env.id, desktop_flow)
        conn = connection_to_use(s, actor, env.id, role, connection)
        run, machines = queue_run(s, actor.label, flow, conn, actor.id, timeout)
        view = run_view(run)
        signal_queued(core, machines, s=s)
    return view


def _find(s: Session, actor: Actor, env_id: str, run_id: str, lock: bool = False) -> Run:
    env, role = authz.require_env(s, actor, env_id, "run.read")
    q = select(Run).where(Run.id == run_id, Run.env_id == env.id, run_state.visible(actor, role))
    run = s.scalar(q.with_for_update() if lock else q)
    if run is None:
        raise NotFound(f"run {run_id!r} not found", code="run_not_found")
    return run


def get_run(core: Core, actor: Actor, env_id: str, run_id: str) -> dict[str, Any]:
    with core.db.read() as s:
        return run_view(_find(s, actor, env_id, run_id))


# A run's id is made when it is written, a moment after its queued_at: the id range of ``until`` reaches this far
# past it, and queued_at itself decides.
_UNTIL_SLACK = timedelta(minutes=5)


def list_runs(core: Core, actor: Actor, env_id: str, status: str | None = None, connection: str | None = None,
              desktop_flow: str | None = None, cloud_flow: str | None = None, machine: str | None = None,
              since: datetime | None = None, until: datetime | None = None, limit: int = 50,
              cursor: str | None = None) -> dict[str, Any]:
    """One page of the runs the caller sees, oldest first along their ids (which sort by queue time), of one
    status, connection, desktop flow, cloud flow or machine (ids), queued at or after ``since`` and before
    ``until``. Each filter and the caller's visibility are conditions of the one query."""
    wanted = run_status_named(status) if status is not None else None
    filters = {"connection": (Run.connection_id, connection), "desktop_flow": (Run.desktop_flow_id, desktop_flow),
               "cloud_flow": (Run.cloud_flow_id, cloud_flow), "machine": (Run.machine_id, machine)}
    since, until = lookup.time_range(since, until)
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, role = authz.require_env(s, actor, env_id, "run.read")
        q = select(Run).where(Run.env_id == env.id, run_state.visible(actor, role))
        if wanted is not None:
            q = q.where(Run.status == wanted)
        for name, (column, value) in filters.items():
            if lookup.id_filter(name, value) is not None:
                q = q.where(column == value)
        if since is not None:
            q = q.where(Run.id >= lookup.id_at(since), Run.queued_at >= since)
        if until is not None:
            q = q.where(Run.id < lookup.id_at(until, _UNTIL_SLACK), Run.queued_at < until)
        return lookup.seek(s, q, Run.id, limit=limit, cursor=cursor, view=lambda r: run_view(r, include_log=False),
                           any_of=run_state.visible_parts(s, actor, role, env.id))


def _cursor(value: str | None) -> str | None:
    if value is not None and (len(value) != 32 or any(c not in "0123456789abcdef" for c in value)):
        raise Malformed("the cursor is not one this list gave", code="malformed_cursor")
    return value


def page_runs(core: Core, actor: Actor, env_id: str, *, search: str = "", status: str | None = None,
              newest_first: bool = True, after: str | None = None, before: str | None = None, limit: int = 50,
              machine: str | None = None) -> dict[str, Any]:
    """One page of the runs the caller sees, along their ids (which sort by queue time, in the primary key's
    index): newest or oldest first, of one status, on one machine (its id), whose desktop flow or connection name
    holds ``search``. Each
    run comes with the names of its desktop flow, connection and machine; ``next`` and ``previous`` are the
    ``after=`` and ``before=`` of the pages around (None at either end)."""
    after, before = _cursor(after), _cursor(before)
    with core.db.read() as s:
        env, role = authz.require_env(s, actor, env_id, "run.read")
        q = select(Run).where(Run.env_id == env.id, run_state.visible(actor, role))
        if status:
            q = q.where(Run.status == run_status_named(status))
        if machine:
            q = q.where(Run.machine_id == machine)
        if search.strip():
            term = search.strip()
            flows = select(DesktopFlow.id).where(DesktopFlow.env_id == env.id, lookup.holds([DesktopFlow.name], term))
            conns = select(Connection.id).where(Connection.env_id == env.id, lookup.holds([Connection.name], term))
            q = q.where(or_(Run.desktop_flow_id.in_(flows), Run.connection_id.in_(conns)))
        rows, more, earlier = lookup.keyset(s, q, Run.id, newest_first=newest_first, after=after, before=before,
                                            limit=limit, any_of=run_state.visible_parts(s, actor, role, env.id))
        items = _named(s, [run_view(r, include_log=False) for r in rows])
        return {"items": items, "next": items[-1]["id"] if items and more else None,
                "previous": items[0]["id"] if items and earlier else None}


_LABEL = re.compile(r"\b(user|machine):([0-9a-f]{32})\b")


def _named(s: Session, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` (run views) with the names of their desktop flow, connection and machine (None when gone), and
    the people and machines their ``reason_detail`` names (``cancelled by user:ID``) by email and name."""
    tables = {"desktop_flow": DesktopFlow.name, "connection": Connection.name, "machine": Machine.name}
    for field, column in tables.items():
        names = lookup.names_of(s, column, (item[field] for item in items))
        for item in items:
            item[f"{field}_name"] = names.get(item[field] or "")
    labels = [m for item in items for m in _LABEL.findall(item.get("reason_detail") or "")]
    if labels:
        who = {**lookup.names_of(s, User.email, (i for k, i in labels if k == "user")),
               **lookup.names_of(s, Machine.name, (i for k, i in labels if k == "machine"))}
        for item in items:
            if item.get("reason_detail"):
                item["reason_detail"] = _LABEL.sub(lambda m: who.get(m.group(2), m.group(0)), item["reason_detail"])
    return items


def describe_run(core: Core, actor: Actor, env_id: str, run_id: str) -> dict[str, Any]:
    """``get_run`` with the names of the run's desktop flow, connection and machine, for the pages."""
    with core.db.read() as s:
        return _named(s, [run_view(_find(s, actor, env_id, run_id))])[0]


def cancel_run(core: Core, actor: Actor, env_id: str, run_id: str) -> dict[str, Any]:
    """A queued run never starts; a running one is ``cancelled`` now and its machine is told to stop the flow (at
    its next heartbeat). What the machine reports afterwards is kept in the log; the run stays cancelled."""
    with core.db.transaction() as s:
        run = _find(s, actor, env_id, run_id, lock=True)
        if run.status not in ACTIVE:
            raise Conflict(f"the run has already ended ({run.status})", code="run_finished", status_now=run.status)
        was = run.status
        run_state.cancel(run, actor.label)
        record(s, actor=actor.label, action="run.cancel", env_id=run.env_id, object_type="run", object_id=run.id,
               detail={"was": was, "machine": run.machine_id})
        view, woken = run_view(run), leases.next_in_line(s, [leases.credential_of(s, run)])
    leases.wake(core, woken)
    return view


def expire_overdue(core: Core, now: datetime | None = None) -> int:
    """Fail runs past their timeout (waiting or running) and runs whose machine has not been seen for long
    (three times the offline delay, counted from this process's start at the earliest)."""
    now = now or utcnow()
    lost_after = timedelta(seconds=3 * core.settings.machine_offline_after_seconds)
    # The runs past their deadline, and the running runs (as many as busy machines) whose machine went quiet:
    # index ranges, however many runs wait. A run without a deadline (written before deadlines were kept) is
    # judged by its times.
    found = (select(Run.id, Run.status, Run.queued_at, Run.started_at, Run.timeout_seconds, Machine.last_seen)
             .outerjoin(Machine, Machine.id == Run.machine_id))
    with core.db.read() as s:
        rows: list[Any] = []
        for late in (Run.deadline_at < now, Run.deadline_at.is_(None)):  # apart: each one range of the index
            rows += s.execute(found.where(Run.status.in_(ACTIVE), late)).all()
        if now - core.started_at > lost_after:
            rows += s.execute(found.where(Run.status == RunStatus.RUNNING, or_(
                Machine.last_seen.is_(None), Machine.last_seen < now - lost_after))).all()
    due: dict[str, tuple[str, str]] = {}
    for rid, status, queued_at, started_at, timeout, last_seen in rows:
        limit = timedelta(seconds=timeout)
        if status == RunStatus.QUEUED and now - queued_at > limit:
            due[rid] = ("timed_out", "no machine took it in time")
        elif status == RunStatus.RUNNING and started_at is not None and now - started_at > limit:
            due[rid] = ("timed_out", "it ran longer than its timeout")
        elif status == RunStatus.RUNNING and now - max(last_seen or core.started_at, core.started_at) > lost_after:
            due[rid] = ("machine_lost", "the machine stopped sending heartbeats")
    if not due:
        return 0
    with core.db.transaction() as s:
        ended: list[str | None] = []
        for rid, (reason, detail) in due.items():
            run = s.scalar(select(Run).where(Run.id == rid, Run.status.in_(ACTIVE)).with_for_update())
            if run is None:
                continue
            run_state.fail(run, reason, detail, now)
            record(s, actor="system:scheduler", action="run.expire", env_id=run.env_id, object_type="run",
                   object_id=run.id, detail={"reason": reason, "machine": run.machine_id})
            ended.append(leases.credential_of(s, run))
        woken = leases.next_in_line(s, ended)
    leases.wake(core, woken)
    return len(due)
