"""Desktop flows: the command line a machine runs, with the credential in its environment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, RuleViolation
from credflow.domain.names import check_name
from credflow.persistence.tables import DesktopFlow, Run
from credflow.services import lookup
from credflow.services.access import authz
from credflow.services.automation import run_state
from credflow.services.catalog import dependencies
from credflow.services.catalog.solutions import attach_to_solution
from credflow.services.core import Actor, Core
from credflow.services.views import ts

MAX_ARGS = 200
MAX_ARG_LENGTH = 8192


def desktop_flow_view(f: DesktopFlow) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "command": list(f.command), "environment": f.env_id,
            "created_by": f.created_by, "owner": f.owner_id, "created_at": ts(f.created_at)}


def find_desktop_flow(s: Session, env_id: str, ref: str) -> DesktopFlow:
    return lookup.find_in_env(s, DesktopFlow, env_id, ref, "desktop flow", "desktop_flow_not_found")


def check_desktop_flow(name: Any, command: Any) -> tuple[str, list[str]]:
    """The name and the command line (argv) of a desktop flow, checked."""
    name = check_name(name, "desktop flow", one_code=True)
    if (not isinstance(command, list) or not command or len(command) > MAX_ARGS
            or not all(isinstance(a, str) and len(a) <= MAX_ARG_LENGTH for a in command) or not command[0]):
        raise RuleViolation(f"command is a list of 1 to {MAX_ARGS} strings (argv), the first naming the program",
                            code="invalid_command")
    return name, list(command)


def create_desktop_flow(core: Core, actor: Actor, env_id: str, name: str, command: list[str],
                        solution: str | None = None) -> dict[str, Any]:
    name, command = check_desktop_flow(name, command)
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "desktop_flow.create")
        if s.scalar(select(DesktopFlow.id).where(DesktopFlow.env_id == env.id, DesktopFlow.name == name)):
            raise Conflict(f"a desktop flow named {name!r} exists", code="duplicate_name")
        f = DesktopFlow(env_id=env.id, name=name, command=command, created_by=actor.id, owner_id=actor.id)
        s.add(f)
        s.flush()
        record(s, actor=actor.label, action="desktop_flow.create", env_id=env.id, object_type="desktop_flow",
               object_id=f.id, detail={"name": name})
        if solution:
            attach_to_solution(s, env.id, solution, "desktop_flow", f.id)
        return desktop_flow_view(f)


def list_desktop_flows(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                       ) -> dict[str, Any]:
    """One page of the environment's desktop flows, in the order they were made."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "desktop_flow.read")
        return lookup.seek(s, select(DesktopFlow).where(DesktopFlow.env_id == env.id), DesktopFlow.id,
                           limit=limit, cursor=cursor, view=desktop_flow_view)


def page_desktop_flows(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's desktop flows, searched by name, sorted by name or creation."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "desktop_flow.read")
        return lookup.page(s, select(DesktopFlow).where(DesktopFlow.env_id == env.id), listing,
                           search=[DesktopFlow.name], key=DesktopFlow.id, view=desktop_flow_view,
                           sorts={"name": DesktopFlow.name, "created": DesktopFlow.created_at})


def get_desktop_flow(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "desktop_flow.read")
        return desktop_flow_view(find_desktop_flow(s, env.id, ref))


def update_desktop_flow(core: Core, actor: Actor, env_id: str, ref: str, name: str | None = None,
                        command: list[str] | None = None) -> dict[str, Any]:
    """Rename a desktop flow or change its command (its owner or a system administrator). Runs still queued run
    the new command: a machine receives the command when it claims the run."""
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "desktop_flow.create")
        f = find_desktop_flow(s, env.id, ref)
        authz.require_owner(actor, role, f.owner_id, "desktop flow")
        new_name, new_command = check_desktop_flow(f.name if name is None else name,
                                                   list(f.command) if command is None else command)
        other = s.scalar(select(DesktopFlow.id).where(DesktopFlow.env_id == env.id, DesktopFlow.name == new_name))
        if other is not None and other != f.id:
            raise Conflict(f"a desktop flow named {new_name!r} exists", code="duplicate_name")
        detail: dict[str, Any] = {"name": new_name}
        if new_name != f.name:
            detail["previous_name"] = f.name
        if new_command != list(f.command):
            detail.update(command=new_command, previous_command=list(f.command))
        f.name, f.command = new_name, new_command
        record(s, actor=actor.label, action="desktop_flow.update", env_id=env.id, object_type="desktop_flow",
               object_id=f.id, detail=detail)
        return desktop_flow_view(f)


def delete_desktop_flow(core: Core, actor: Actor, env_id: str, ref: str) -> None:
    """Refused while a cloud flow uses it or a run of it is queued or running; finished runs go with it."""
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "desktop_flow.create")
        f = find_desktop_flow(s, env.id, ref)
        authz.require_owner(actor, role, f.owner_id, "desktop flow")
        flows = dependencies.cloud_flows_naming(s, env.id, "desktop_flow", f.id)
        active = run_state.active_ids(s, Run.desktop_flow_id == f.id)
        if flows or active:
            raise Conflict("cloud flows or active runs use this desktop flow", code="in_use",
                           dependents={"cloud_flows": flows, "runs": active})
        run_state.delete_all(s, Run.desktop_flow_id == f.id)
        record(s, actor=actor.label, action="desktop_flow.delete", env_id=env.id, object_type="desktop_flow",
               object_id=f.id, detail={"name": f.name})
        s.delete(f)
