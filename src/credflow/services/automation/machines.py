"""Machines: expiring single-use registration tokens, the machines they register, and machine groups.

A machine proves who it is with its own token and holds an X25519 key pair; credflow keeps only the public
key, so only that machine can open what is sealed to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.crypto.sealing import BadPublicKey, parse_public_key
from credflow.domain.errors import Conflict, Forbidden, RuleViolation, Unauthenticated
from credflow.domain.names import check_name
from credflow.domain.roles import EnvironmentRole
from credflow.domain.statuses import RunStatus
from credflow.persistence.tables import (
    Connection,
    Machine,
    MachineGroup,
    MachineGroupMember,
    MachineRegistration,
    Run,
    utcnow,
)
from credflow.services import lookup
from credflow.services.access import authz
from credflow.services.automation import run_state
from credflow.services.core import Actor, Core, new_token
from credflow.services.views import ts

MAX_REGISTRATION_TTL = 7 * 24 * 3600
RECENT_RUNS = 10  # the runs a machine's detail shows


def is_online(core: Core, m: Machine, now: datetime | None = None) -> bool:
    limit = timedelta(seconds=core.settings.machine_offline_after_seconds)
    return m.last_seen is not None and (now or utcnow()) - m.last_seen < limit


def groups_of(s: Session, machine_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {m: [] for m in machine_ids}
    if machine_ids:
        rows = s.execute(select(MachineGroupMember.machine_id, MachineGroupMember.group_id)
                         .where(MachineGroupMember.machine_id.in_(machine_ids))
                         .order_by(MachineGroupMember.group_id)).all()
        for machine_id, group_id in rows:
            out[machine_id].append(group_id)
    return out


def machine_view(core: Core, m: Machine, groups: list[str]) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "environment": m.env_id, "public_key": m.public_key,
            "status": "online" if is_online(core, m) else "offline", "last_seen": ts(m.last_seen),
            "groups": groups, "owner": m.owner_id, "disabled": bool(m.disabled), "created_at": ts(m.created_at)}


def group_view(g: MachineGroup, members: list[str]) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "environment": g.env_id, "machines": members, "owner": g.owner_id,
            "created_at": ts(g.created_at)}


def find_machine(s: Session, env_id: str, ref: str) -> Machine:
    return lookup.find_in_env(s, Machine, env_id, ref, "machine", "machine_not_found")


def find_group(s: Session, env_id: str, ref: str) -> MachineGroup:
    return lookup.find_in_env(s, MachineGroup, env_id, ref, "machine group", "machine_group_not_found")


def members(s: Session, group_id: str) -> list[str]:
    return list(s.scalars(select(MachineGroupMember.machine_id).where(MachineGroupMember.group_id == group_id)
                          .order_by(MachineGroupMember.machine_id)).all())


# --- registration ------------------------------------------------------------------------------------------
def create_registration(core: Core, actor: Actor, env_id: str, expires_in_seconds: int | None = None
                        ) -> dict[str, Any]:
    ttl = expires_in_seconds or core.settings.registration_token_ttl_seconds
    if not 1 <= ttl <= MAX_REGISTRATION_TTL:
        raise RuleViolation(f"expires_in_seconds is between 1 and {MAX_REGISTRATION_TTL}", code="invalid_ttl")
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "machine.register")
        token = new_token("cfr")
        reg = MachineRegistration(env_id=env.id, token_hash=authz.token_hash(token),
                                  expires_at=utcnow() + timedelta(seconds=ttl), created_by=actor.id)
        s.add(reg)
        s.flush()
        record(s, actor=actor.label, action="machine_registration.create", env_id=env.id,
               object_type="machine_registration", object_id=reg.id, detail={"expires_at": ts(reg.expires_at)})
        return {"id": reg.id, "registration_token": token, "expires_at": ts(reg.expires_at),
                "environment": env.id}


def register_machine(core: Core, registration_token: str, name: str, public_key: str) -> dict[str, Any]:
    """Exchange a registration token (once, before it expires) for a machine and its token."""
    name = check_name(name, "machine")
    try:
        parse_public_key(public_key)
    except BadPublicKey as exc:
        raise RuleViolation(str(exc), code="bad_public_key") from None
    now = utcnow()
    with core.db.transaction() as s:
        reg = s.scalar(select(MachineRegistration)
                       .where(MachineRegistration.token_hash == authz.token_hash(registration_token)))
        if reg is None:
            raise Unauthenticated("the registration token is not valid", code="registration_token_invalid")
        if reg.used_at is not None:
            raise Unauthenticated("the registration token was already used", code="registration_token_used")
        if reg.expires_at <= now:
            raise Unauthenticated("the registration token has expired", code="registration_token_expired")
        if s.scalar(select(Machine.id).where(Machine.env_id == reg.env_id, Machine.name == name)):
            raise Conflict(f"a machine named {name!r} exists in this environment", code="duplicate_name")
        taken = s.execute(update(MachineRegistration)
                          .where(MachineRegistration.id == reg.id, MachineRegistration.used_at.is_(None))
                          .values(used_at=now))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Unauthenticated("the registration token was already used", code="registration_token_used")
        token = new_token(authz.MACHINE_TOKEN_PREFIX.rstrip("_"))
        # Not seen until its first heartbeat or claim: a machine that never connects is never shown online.
        m = Machine(env_id=reg.env_id, name=name, public_key=public_key, token_hash=authz.token_hash(token),
                    last_seen=None, owner_id=reg.created_by)
        s.add(m)
        s.flush()
        record(s, actor=f"machine:{m.id}", action="machine.register", env_id=reg.env_id, object_type="machine",
               object_id=m.id, detail={"name": name, "registration": reg.id, "registered_by": reg.created_by})
        return {"machine_id": m.id, "machine_token": token, "environment": reg.env_id, "name": name}


# --- machines ------------------------------------------------------------------------------------------------
def list_machines(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                  ) -> dict[str, Any]:
    """One page of the environment's machines, in the order they were registered, each with its groups."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "machine.read")

        def shown(rows: list[Machine]) -> list[dict[str, Any]]:
            groups = groups_of(s, [m.id for m in rows])
            return [machine_view(core, m, groups[m.id]) for m in rows]
        return lookup.seek(s, select(Machine).where(Machine.env_id == env.id), Machine.id, limit=limit,
                           cursor=cursor, views=shown)


def page_machines(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's machines, searched by name, sorted by name, last seen or registration; each
    with the names of its groups (``group_names``)."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "machine.read")
        found = lookup.page(s, select(Machine).where(Machine.env_id == env.id), listing, search=[Machine.name],
                            key=Machine.id, view=lambda m: machine_view(core, m, []),
                            sorts={"name": Machine.name, "last_seen": Machine.last_seen,
                                   "created": Machine.created_at})
        groups = groups_of(s, [m["id"] for m in found["items"]])
        names = lookup.names_of(s, MachineGroup.name, (g for ids in groups.values() for g in ids))
        for m in found["items"]:
            m["groups"] = groups[m["id"]]
            m["group_names"] = [names.get(g, g) for g in m["groups"]]
        return found


def get_machine(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    """The machine with its latest runs (those the caller sees, newest first)."""
    with core.db.read() as s:
        env, role = authz.require_env(s, actor, env_id, "machine.read")
        m = find_machine(s, env.id, ref)
        return {**machine_view(core, m, groups_of(s, [m.id])[m.id]),
                "runs": run_state.recent(s, actor, role, Run.machine_id == m.id, limit=RECENT_RUNS)}


def update_machine(core: Core, actor: Actor, env_id: str, ref: str, name: str | None = None,
                   disabled: bool | None = None) -> dict[str, Any]:
    """Rename, disable or enable a machine (its owner or a system administrator). The agent keeps its token and
    key; the name is only how people find it. A disabled machine claims nothing (its heartbeats still count)."""
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "machine.read")
        m = find_machine(s, env.id, ref)
        authz.require_owner(actor, role, m.owner_id, "machine")
        changed: dict[str, Any] = {}
        if name is not None:
            new_name = check_name(name, "machine")
            other = s.scalar(select(Machine.id).where(Machine.env_id == env.id, Machine.name == new_name))
            if other is not None and other != m.id:
                raise Conflict(f"a machine named {new_name!r} exists in this environment", code="duplicate_name")
            if new_name != m.name:
                changed["name"] = {"from": m.name, "to": new_name}
                m.name = new_name
        if disabled is not None and disabled != m.disabled:
            m.disabled = disabled
            changed["disabled"] = disabled
        record(s, actor=actor.label, action="machine.update", env_id=env.id, object_type="machine",
               object_id=m.id, detail=changed)
        return machine_view(core, m, groups_of(s, [m.id])[m.id])


def fail_runs_of_targets(s: Session, machine_id: str | None, group_id: str | None, why: str, detail: str) -> int:
    """Queued runs that can no longer reach a machine, and runs a deleted machine holds, turn failed."""
    count = 0
    conns = select(Connection.id).where(
        Connection.machine_id == machine_id if machine_id else Connection.machine_group_id == group_id)
    queued = s.scalars(select(Run).where(Run.status == RunStatus.QUEUED, Run.connection_id.in_(conns))).all()
    held = s.scalars(select(Run).where(Run.status == RunStatus.RUNNING, Run.machine_id == machine_id)).all() \
        if machine_id else []
    for run in [*queued, *held]:
        run_state.fail(run, why, detail)
        count += 1
    return count


def delete_machine(core: Core, actor: Actor, env_id: str, ref: str) -> None:
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "machine.read")
        m = find_machine(s, env.id, ref)
        authz.require_owner(actor, role, m.owner_id, "machine")
        failed = fail_runs_of_targets(s, m.id, None, "machine_deleted", "its machine was deleted")
        record(s, actor=actor.label, action="machine.delete", env_id=env.id, object_type="machine",
               object_id=m.id, detail={"name": m.name, "runs_failed": failed})
        s.delete(m)  # its connections lose their target; its token stops working


# --- machine groups ------------------------------------------------------------------------------------------
def _set_members(s: Session, actor: Actor, role: EnvironmentRole, group: MachineGroup, machines: list[str]
                 ) -> list[str]:
    """Set a group's members. A machine joins only by its owner or an administrator: a group's runs are sealed
    to every member, so adding one's own machine to another's group would take the group's passwords."""
    found = {m.id: m for m in (find_machine(s, group.env_id, ref) for ref in machines)}
    ids = sorted(found)
    current = set(members(s, group.id))
    foreign = sorted(m.name for mid, m in found.items() if mid not in current and not authz.owns(actor, role,
                                                                                                 m.owner_id))
    if foreign:
        raise Forbidden(f"you may add only machines you own to a group: {', '.join(foreign)}",
                        code="machine_not_yours", machines=foreign)
    for gone in current - set(ids):
        s.delete(s.get(MachineGroupMember, (group.id, gone)))
    for new in set(ids) - current:
        s.add(MachineGroupMember(group_id=group.id, machine_id=new))
    s.flush()
    return ids


def _unique_group(s: Session, env_id: str, name: str, except_id: str | None = None) -> None:
    other = s.scalar(select(MachineGroup.id).where(MachineGroup.env_id == env_id, MachineGroup.name == name))
    if other is not None and other != except_id:
        raise Conflict(f"a machine group named {name!r} exists", code="duplicate_name")


def create_group(core: Core, actor: Actor, env_id: str, name: str, machines: list[str]) -> dict[str, Any]:
    name = check_name(name, "machine group")
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "machine_group.write")
        _unique_group(s, env.id, name)
        g = MachineGroup(env_id=env.id, name=name, owner_id=actor.id)
        s.add(g)
        s.flush()
        ids = _set_members(s, actor, role, g, machines)
        record(s, actor=actor.label, action="machine_group.create", env_id=env.id, object_type="machine_group",
               object_id=g.id, detail={"name": name, "machines": ids})
        return group_view(g, ids)


def group_names(core: Core, actor: Actor, env_id: str, ids: list[str]) -> dict[str, str]:
    """``{id: name}`` of the environment's machine groups among ``ids``."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "machine_group.read")
        rows = s.execute(select(MachineGroup.id, MachineGroup.name)
                         .where(MachineGroup.env_id == env.id, MachineGroup.id.in_(set(ids)))).all()
        return {gid: name for gid, name in rows}


def list_groups(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                ) -> dict[str, Any]:
    """One page of the environment's machine groups, in the order they were made, each with its machines."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "machine_group.read")
        return lookup.seek(s, select(MachineGroup).where(MachineGroup.env_id == env.id), MachineGroup.id,
                           limit=limit, cursor=cursor, view=lambda g: group_view(g, members(s, g.id)))


def page_groups(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's machine groups, searched by name, sorted by name or creation; each with
    its machines' names (``machine_names``, by id)."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "machine_group.read")
        found = lookup.page(s, select(MachineGroup).where(MachineGroup.env_id == env.id), listing,
                            search=[MachineGroup.name], key=MachineGroup.id,
                            view=lambda g: group_view(g, members(s, g.id)),
                            sorts={"name": MachineGroup.name, "created": MachineGroup.created_at})
        names = lookup.names_of(s, Machine.name, (m for g in found["items"] for m in g["machines"]))
        for g in found["items"]:
            g["machine_names"] = {m: names.get(m, m) for m in g["machines"]}
        return found


def get_group(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "machine_group.read")
        g = find_group(s, env.id, ref)
        return group_view(g, members(s, g.id))


def update_group(core: Core, actor: Actor, env_id: str, ref: str, name: str | None,
                 machines: list[str] | None) -> dict[str, Any]:
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "machine_group.write")
        g = find_group(s, env.id, ref)
        authz.require_owner(actor, role, g.owner_id, "machine group")
        if name is not None:
            new_name = check_name(name, "machine group")
            _unique_group(s, env.id, new_name, except_id=g.id)  # before the change, or autoflush writes it
            g.name = new_name
        ids = _set_members(s, actor, role, g, machines) if machines is not None else members(s, g.id)
        record(s, actor=actor.label, action="machine_group.update", env_id=env.id, object_type="machine_group",
               object_id=g.id, detail={"name": g.name, "machines": ids})
        return group_view(g, ids)


def delete_group(core: Core, actor: Actor, env_id: str, ref: str) -> None:
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "machine_group.write")
        g = find_group(s, env.id, ref)
        authz.require_owner(actor, role, g.owner_id, "machine group")
        failed = fail_runs_of_targets(s, None, g.id, "machine_group_deleted", "its machine group was deleted")
        record(s, actor=actor.label, action="machine_group.delete", env_id=env.id, object_type="machine_group",
               object_id=g.id, detail={"name": g.name, "runs_failed": failed})
        s.delete(g)
