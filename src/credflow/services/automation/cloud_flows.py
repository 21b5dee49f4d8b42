"""Cloud flows and connection references.

A connection reference is a named slot bound to a connection of its environment; a cloud flow's
``run_desktop_flow`` actions name a desktop flow and a reference, so the flow moves between environments
while each environment binds its own connection. A flow runs when asked (manual) or on a cron schedule (UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, DomainError, RuleViolation
from credflow.domain.names import check_name
from credflow.persistence.tables import CloudFlow, Connection, ConnectionReference, DesktopFlow, utcnow
from credflow.services import lookup
from credflow.services.access import authz
from credflow.services.automation.connections import connection_to_use
from credflow.services.automation.desktop_flows import find_desktop_flow
from credflow.services.automation.runs import check_timeout, queue_run, run_view, signal_queued
from credflow.services.catalog import dependencies
from credflow.services.catalog.solutions import attach_to_solution
from credflow.services.core import Actor, Core
from credflow.services.views import ts

MAX_ACTIONS = 50


# --- connection references -----------------------------------------------------------------------------------
def reference_view(r: ConnectionReference) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "connection": r.connection_id, "owner": r.owner_id,
            "environment": r.env_id, "created_at": ts(r.created_at)}


def find_reference(s: Session, env_id: str, ref: str) -> ConnectionReference:
    return lookup.find_in_env(s, ConnectionReference, env_id, ref, "connection reference",
                              "connection_reference_not_found")


def create_reference(core: Core, actor: Actor, env_id: str, name: str, connection: str | None = None
                     ) -> dict[str, Any]:
    name = check_name(name, "connection reference", one_code=True)
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "connection_reference.create")
        if s.scalar(select(ConnectionReference.id).where(ConnectionReference.env_id == env.id,
                                                         ConnectionReference.name == name)):
            raise Conflict(f"a connection reference named {name!r} exists", code="duplicate_name")
        conn_id = connection_to_use(s, actor, env.id, role, connection).id if connection else None
        r = ConnectionReference(env_id=env.id, name=name, connection_id=conn_id, owner_id=actor.id)
        s.add(r)
        s.flush()
        record(s, actor=actor.label, action="connection_reference.create", env_id=env.id,
               object_type="connection_reference", object_id=r.id, detail={"name": name, "connection": conn_id})
        return reference_view(r)


def bind_reference(core: Core, actor: Actor, env_id: str, ref: str, connection: str | None) -> dict[str, Any]:
    """Bind a reference to a connection the caller owns (any, for system administrators), or unbind it. The
    owners of the cloud flows that use the reference must be allowed to use the connection too."""
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "connection_reference.create")
        r = find_reference(s, env.id, ref)
        authz.require_owner(actor, role, r.owner_id, "connection reference")
        conn = connection_to_use(s, actor, env.id, role, connection) if connection else None
        check_rebinding(s, r, conn)
        r.connection_id = conn.id if conn is not None else None
        record(s, actor=actor.label, action="connection_reference.bind", env_id=env.id,
               object_type="connection_reference", object_id=r.id, detail={"connection": r.connection_id})
        return reference_view(r)


def list_references(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                    ) -> dict[str, Any]:
    """One page of the environment's connection references, in the order they were made."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "connection_reference.read")
        return lookup.seek(s, select(ConnectionReference).where(ConnectionReference.env_id == env.id),
                           ConnectionReference.id, limit=limit, cursor=cursor, view=reference_view)


def page_references(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's connection references, searched by name, sorted by name or creation; each
    with its connection's name (``connection_name``)."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "connection_reference.read")
        found = lookup.page(s, select(ConnectionReference).where(ConnectionReference.env_id == env.id), listing,
                            search=[ConnectionReference.name], key=ConnectionReference.id, view=reference_view,
                            sorts={"name": ConnectionReference.name, "created": ConnectionReference.created_at})
        names = lookup.names_of(s, Connection.name, (r["connection"] for r in found["items"]))
        for r in found["items"]:
            r["connection_name"] = names.get(r["connection"] or "")
        return found


def get_reference(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "connection_reference.read")
        return reference_view(find_reference(s, env.id, ref))


def delete_reference(core: Core, actor: Actor, env_id: str, ref: str) -> None:
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "connection_reference.create")
        r = find_reference(s, env.id, ref)
        authz.require_owner(actor, role, r.owner_id, "connection reference")
        users = dependencies.cloud_flows_naming(s, env.id, "connection_reference", r.id)
        if users:
            raise Conflict("cloud flows use this connection reference", code="in_use",
                           dependents={"cloud_flows": users})
        record(s, actor=actor.label, action="connection_reference.delete", env_id=env.id,
               object_type="connection_reference", object_id=r.id, detail={"name": r.name})
        s.delete(r)


# --- cloud flows -----------------------------------------------------------------------------------------------
def cloud_flow_view(f: CloudFlow) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "trigger": f.trigger, "actions": f.actions, "owner": f.owner_id,
            "next_fire_at": ts(f.next_fire_at), "environment": f.env_id, "created_at": ts(f.created_at)}


def next_fire(cron: str, after: datetime) -> datetime:
    nxt: datetime = croniter(cron, after).get_next(datetime)
    return nxt


def check_trigger(trigger: Any) -> dict[str, Any]:
    """A cloud flow's trigger, checked: manual, or a five-field cron schedule (UTC)."""
    kind = trigger.get("type") if isinstance(trigger, dict) else None
    if kind == "manual" and set(trigger) == {"type"}:
        return {"type": "manual"}
    if kind == "schedule" and set(trigger) == {"type", "cron"}:
        cron = trigger["cron"]
        if not isinstance(cron, str) or not croniter.is_valid(cron) or len(cron.split()) != 5:
            raise RuleViolation("cron is a five-field cron expression (UTC), e.g. '*/15 * * * *'",
                                code="invalid_cron")
        return {"type": "schedule", "cron": cron}
    raise RuleViolation('trigger is {"type": "manual"} or {"type": "schedule", "cron": "..."}',
                        code="invalid_trigger")


def first_fire(trigger: dict[str, Any]) -> datetime | None:
    """When a flow with this (checked) trigger fires first: the next time of its schedule; never, if manual."""
    return next_fire(trigger["cron"], utcnow()) if trigger["type"] == "schedule" else None


def check_actions(s: Session, env_id: str, actions: Any) -> list[dict[str, Any]]:
    """A cloud flow's actions, checked, with the desktop flows and connection references they name (by id or
    name) turned into this environment's ids."""
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_ACTIONS:
        raise RuleViolation(f"a cloud flow has 1 to {MAX_ACTIONS} actions", code="invalid_actions")
    out = []
    for a in actions:
        if not isinstance(a, dict) or a.get("type") != "run_desktop_flow" or not set(a) <= {
                "type", "desktop_flow", "connection_reference", "timeout_seconds"}:
            raise RuleViolation('each action is {"type": "run_desktop_flow", "desktop_flow", '
                                '"connection_reference"}', code="invalid_actions")
        flow = find_desktop_flow(s, env_id, str(a.get("desktop_flow", "")))
        ref = find_reference(s, env_id, str(a.get("connection_reference", "")))
        action: dict[str, Any] = {"type": "run_desktop_flow", "desktop_flow": flow.id, "connection_reference": ref.id}
        if a.get("timeout_seconds") is not None:
            action["timeout_seconds"] = check_timeout(a["timeout_seconds"])
        out.append(action)
    return out


def flows_using_reference(s: Session, r: ConnectionReference) -> list[CloudFlow]:
    flows = s.scalars(select(CloudFlow).where(CloudFlow.env_id == r.env_id).order_by(CloudFlow.id)).all()
    return [f for f in flows if any(a.get("connection_reference") == r.id for a in f.actions)]


def check_rebinding(s: Session, r: ConnectionReference, conn: Connection | None) -> None:
    """The owner of every cloud flow that uses the reference must be allowed to use its new connection."""
    if conn is not None:
        for flow in flows_using_reference(s, r):
            authz.require_connection_use(s, flow.owner_id, conn)


def check_bindings(s: Session, owner_id: str | None, actions: list[dict[str, Any]]) -> None:
    """A cloud flow may use only connection references bound to connections its owner may use (403
    ``connection_not_yours``); an unbound reference is checked when it is bound."""
    for a in actions:
        ref = s.get(ConnectionReference, a["connection_reference"])
        conn = s.get(Connection, ref.connection_id) if ref is not None and ref.connection_id else None
        if conn is not None:
            authz.require_connection_use(s, owner_id, conn)


def find_cloud_flow(s: Session, env_id: str, ref: str) -> CloudFlow:
    return lookup.find_in_env(s, CloudFlow, env_id, ref, "cloud flow", "cloud_flow_not_found")


def create_cloud_flow(core: Core, actor: Actor, env_id: str, name: str, trigger: Any, actions: Any,
                      solution: str | None = None) -> dict[str, Any]:
    name = check_name(name, "cloud flow", one_code=True)
    trig = check_trigger(trigger)
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "cloud_flow.create")
        if s.scalar(select(CloudFlow.id).where(CloudFlow.env_id == env.id, CloudFlow.name == name)):
            raise Conflict(f"a cloud flow named {name!r} exists", code="duplicate_name")
        checked = check_actions(s, env.id, actions)
        check_bindings(s, actor.id, checked)
        f = CloudFlow(env_id=env.id, name=name, trigger=trig, actions=checked, owner_id=actor.id,
                      next_fire_at=first_fire(trig))
        s.add(f)
        s.flush()
        record(s, actor=actor.label, action="cloud_flow.create", env_id=env.id, object_type="cloud_flow",
               object_id=f.id, detail={"name": name, "trigger": trig["type"]})
        if solution:
            attach_to_solution(s, env.id, solution, "cloud_flow", f.id)
        return cloud_flow_view(f)


def list_cloud_flows(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                     ) -> dict[str, Any]:
    """One page of the environment's cloud flows, in the order they were made."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "cloud_flow.read")
        return lookup.seek(s, select(CloudFlow).where(CloudFlow.env_id == env.id), CloudFlow.id, limit=limit,
                           cursor=cursor, view=cloud_flow_view)


def page_cloud_flows(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's cloud flows, searched by name, sorted by name, next run or creation; each
    action with the names of its desktop flow and connection reference (``desktop_flow_name``,
    ``connection_reference_name``)."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "cloud_flow.read")
        found = lookup.page(s, select(CloudFlow).where(CloudFlow.env_id == env.id), listing, search=[CloudFlow.name],
                            key=CloudFlow.id, view=cloud_flow_view,
                            sorts={"name": CloudFlow.name, "next_fire_at": CloudFlow.next_fire_at,
                                   "created": CloudFlow.created_at})
        actions = [a for f in found["items"] for a in f["actions"]]
        flows = lookup.names_of(s, DesktopFlow.name, (a.get("desktop_flow") for a in actions))
        refs = lookup.names_of(s, ConnectionReference.name, (a.get("connection_reference") for a in actions))
        for f in found["items"]:
            f["actions"] = [{**a, "desktop_flow_name": flows.get(a.get("desktop_flow") or ""),
                             "connection_reference_name": refs.get(a.get("connection_reference") or "")}
                            for a in f["actions"]]
        return found


def get_cloud_flow(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "cloud_flow.read")
        return cloud_flow_view(find_cloud_flow(s, env.id, ref))


def delete_cloud_flow(core: Core, actor: Actor, env_id: str, ref: str) -> None:
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "cloud_flow.create")
        f = find_cloud_flow(s, env.id, ref)
        authz.require_owner(actor, role, f.owner_id, "cloud flow")
        record(s, actor=actor.label, action="cloud_flow.delete", env_id=env.id, object_type="cloud_flow",
               object_id=f.id, detail={"name": f.name})
        s.delete(f)


def _queue_actions(s: Session, f: CloudFlow, actor_label: str, created_by: str | None
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """One run per action, on the connection bound to its reference; all or none."""
    runs, machines = [], []
    for a in f.actions:
        flow = s.get(DesktopFlow, a["desktop_flow"])
        ref = s.get(ConnectionReference, a["connection_reference"])
        if flow is None or ref is None:
            raise RuleViolation("an action names a desktop flow or connection reference that is gone",
                                code="invalid_actions")
        conn = s.get(Connection, ref.connection_id) if ref.connection_id else None
        if conn is None:
            raise RuleViolation(f"connection reference {ref.name!r} is not bound to a connection",
                                code="connection_reference_unbound", connection_reference=ref.id)
        authz.require_connection_use(s, f.owner_id, conn)
        run, cands = queue_run(s, actor_label, flow, conn, created_by,
                               check_timeout(a.get("timeout_seconds")), cloud_flow_id=f.id)
        runs.append(run_view(run))
        machines.extend(cands)
    return runs, machines


def run_cloud_flow(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "cloud_flow.run")
        f = find_cloud_flow(s, env.id, ref)
        runs, machines = _queue_actions(s, f, actor.label, actor.id)
        record(s, actor=actor.label, action="cloud_flow.run", env_id=env.id, object_type="cloud_flow",
               object_id=f.id, detail={"runs": [r["id"] for r in runs], "trigger": "manual"})
        signal_queued(core, sorted(set(machines)), len(runs), s=s)
    return {"cloud_flow": f.id, "runs": runs}


def fire_due(core: Core, now: datetime | None = None) -> int:
    """Run every scheduled flow whose time has come (once, however many fire times were missed)."""
    now = now or utcnow()
    queued, machines = 0, []
    with core.db.read() as s:
        if s.scalar(select(CloudFlow.id).where(CloudFlow.next_fire_at <= now).limit(1)) is None:
            return 0
    with core.db.transaction() as s:
        due = s.scalars(select(CloudFlow).where(CloudFlow.next_fire_at.is_not(None), CloudFlow.next_fire_at <= now)
                        .order_by(CloudFlow.next_fire_at).limit(100).with_for_update(skip_locked=True)).all()
        for f in due:
            try:
                with s.begin_nested():
                    runs, cands = _queue_actions(s, f, "system:scheduler", f.owner_id)
                queued += len(runs)
                machines.extend(cands)
                detail: dict[str, Any] = {"runs": [r["id"] for r in runs], "trigger": "schedule"}
            except DomainError as exc:
                detail = {"trigger": "schedule", "skipped": exc.code}
            f.next_fire_at = next_fire(f.trigger["cron"], now)
            record(s, actor="system:scheduler", action="cloud_flow.run", env_id=f.env_id, object_type="cloud_flow",
                   object_id=f.id, detail=detail)
        signal_queued(core, sorted(set(machines)), queued, s=s)
    return queued
