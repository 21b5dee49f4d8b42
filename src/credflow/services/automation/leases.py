"""Credential leases: at most ``max_concurrent_runs`` runs use one credential at once (a bot account that may hold
one session at a time).

A lease is a running run that was delivered the credential (``runs.lease_credential_id``), so it ends with the
run: its result, its timeout, its cancellation, or its machine unseen for longer than
``CREDFLOW_LEASE_GRACE_SECONDS`` (the run then fails ``machine_lost``; a machine that comes back is told to stop
it). A run of a credential without a free lease stays ``queued``, shown ``waiting_for: "credential_lease"``;
``lease_waited_since`` keeps when it was first held back.

Free leases go to the oldest queued runs of the credential first, whatever machine or group they target: a
machine does not take a younger run while an older one waits. Queued runs that no machine can take now (each of
their machines disabled, or unseen for longer than the grace) hold nothing back.

Claims of one credential serialize on its row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write
transaction serializes already): however many server processes claim at once, no more leases than the limit are
handed out. When a lease ends, the machines of the credential's oldest waiting run are woken.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true, update
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.statuses import RunStatus
from credflow.persistence.tables import Connection, Credential, Machine, MachineGroupMember, Run, utcnow
from credflow.services.access import authz
from credflow.services.automation import run_state
from credflow.services.automation.machines import members
from credflow.services.core import Actor, Core
from credflow.services.views import ts


def _held_by(cred_id: Any) -> Any:
    """How many leases of the credential (an id, or a column of an outer query) running runs hold."""
    return (select(func.count()).select_from(Run)
            .where(Run.lease_credential_id == cred_id, Run.status == RunStatus.RUNNING).scalar_subquery())


def _queued_of(cred_id: str) -> Any:
    return (select(Run).join(Connection, Connection.id == Run.connection_id)
            .where(Connection.credential_id == cred_id, Run.status == RunStatus.QUEUED))


def _takeable(core: Core, now: datetime) -> ColumnElement[bool]:
    """Some machine of the (outer) connection's target may take a run now: enabled, and seen within the grace
    (time this server process was not running does not count, as for runs' machines)."""
    grace = timedelta(seconds=core.settings.lease_grace_seconds)
    seen = true() if now - core.started_at <= grace else Machine.last_seen >= now - grace
    in_group = Machine.id.in_(select(MachineGroupMember.machine_id)
                              .where(MachineGroupMember.group_id == Connection.machine_group_id))
    return exists().where(Machine.disabled == false(), seen, or_(Machine.id == Connection.machine_id, in_group))


@dataclass
class ClaimLeases:
    """What one claim learned of leases: the credentials whose runs wait (for this claim), and whether it holds a
    credential's lock already."""

    held_back: set[str] = field(default_factory=set)
    locking: bool = False


def admit(core: Core, s: Session, run: Run, claim: ClaimLeases, limited: bool, now: datetime | None = None) -> bool:
    """Whether ``run`` (queued, locked by the claim) may take a lease of its connection's credential now. Held
    back, it keeps ``lease_waited_since`` and its credential joins ``claim.held_back`` (its younger runs wait too).
    ``limited``: the credential had a limit when the claim read the run (read with it: without one, nothing more
    is read)."""
    conn = s.get(Connection, run.connection_id)
    cred_id = conn.credential_id if conn is not None else None
    if cred_id is None or not limited:
        return True
    limit_of = select(Credential.max_concurrent_runs).where(Credential.id == cred_id)
    # The credential's row is the lock every claim of it takes; then the leases and the queue are read fresh. A
    # claim waits for one such lock at most (a second one only if free), so two claims never wait for each other.
    row = s.execute(limit_of.with_for_update(skip_locked=claim.locking)).first()
    if row is None:  # another claim holds this credential: its runs are left to that claim and the next one
        claim.held_back.add(cred_id)
        return False
    claim.locking = True
    limit = row[0]
    if limit is None:
        return True
    now = now or utcnow()
    older = or_(Run.queued_at < run.queued_at, and_(Run.queued_at == run.queued_at, Run.id < run.id))
    ahead = (select(func.count()).select_from(_queued_of(cred_id).where(older, _takeable(core, now)).subquery())
             .scalar_subquery())
    held = s.scalar(select(_held_by(cred_id))) or 0
    if held + (s.scalar(select(ahead)) or 0) < limit:
        if held + 1 >= limit:  # this run takes the last lease: the others of the credential wait from now
            _note_waiting(s, cred_id, now, except_run=run.id)
        return True
    if run.lease_waited_since is None:
        run.lease_waited_since = now
    claim.held_back.add(cred_id)
    return False


def not_held_back(claim: ClaimLeases) -> ColumnElement[bool]:
    """A condition on a claim's query (runs joined to their connection): not a run of the credentials held back."""
    if not claim.held_back:
        return true()
    return or_(Connection.credential_id.is_(None), Connection.credential_id.notin_(sorted(claim.held_back)))


def _note_waiting(s: Session, cred_id: str, now: datetime, except_run: str) -> None:
    """The credential's other queued runs wait for a lease from ``now``. Runs another claim holds are left to it
    (it waits for this claim's lock on the credential, then holds its run back itself)."""
    waiting = list(s.scalars(_queued_of(cred_id).with_only_columns(Run.id)
                             .where(Run.lease_waited_since.is_(None), Run.id != except_run)
                             .with_for_update(skip_locked=True, of=Run)).all())
    if waiting:
        s.execute(update(Run).where(Run.id.in_(waiting)).values(lease_waited_since=now)
                  .execution_options(synchronize_session=False))


def note_queued(s: Session, run: Run, conn: Connection) -> None:
    """A run queued while every lease of its connection's credential is held waits for one from now."""
    if conn.credential_id is None:
        return
    limit = s.scalar(select(Credential.max_concurrent_runs).where(Credential.id == conn.credential_id))
    if limit is not None and (s.scalar(select(_held_by(conn.credential_id))) or 0) >= limit:
        run.lease_waited_since = run.queued_at


def without_full_credentials() -> ColumnElement[bool]:
    """A condition on a query of runs joined to their connection: the credential has a lease free (or no limit).
    A cheap first look for waiting claims (one lookup by key per run looked at); ``admit`` decides."""
    full = exists().where(Credential.id == Connection.credential_id, Credential.max_concurrent_runs.is_not(None),
                          Credential.max_concurrent_runs <= _held_by(Credential.id))
    return or_(Connection.credential_id.is_(None), ~full)


def credential_of(s: Session, run: Run) -> str | None:
    """The credential whose lease ``run`` holds, or that its connection uses."""
    if run.lease_credential_id is not None:
        return run.lease_credential_id
    conn = s.get(Connection, run.connection_id)
    return conn.credential_id if conn is not None else None


def next_in_line(s: Session, cred_ids: Iterable[str | None]) -> list[str]:
    """The machines that may take the oldest queued run of each of these credentials that has a limit: those to
    wake once a lease of it ended (after the commit, with ``wake``)."""
    machines: list[str] = []
    for cred_id in sorted({c for c in cred_ids if c}):
        cred = s.get(Credential, cred_id)  # often in the session already (a result's log scrubbing read it)
        if cred is None or cred.max_concurrent_runs is None:
            continue
        run = s.scalar(_queued_of(cred_id).order_by(Run.queued_at, Run.id).limit(1))
        conn = s.get(Connection, run.connection_id) if run is not None else None
        if conn is not None:
            targets = [conn.machine_id] if conn.machine_id else members(s, conn.machine_group_id or "")
            machines += [m for m in targets if m not in machines]
    return machines


def wake(core: Core, machine_ids: list[str]) -> None:
    """Wake a waiting claim of one of ``machine_ids`` (after the commit that ended a lease)."""
    if machine_ids:
        core.emit("runs_queued", machine_ids, 1)


def expire_unseen(core: Core, now: datetime | None = None) -> int:
    """Fail the running runs holding a lease of a credential with a limit whose machine has not been seen for
    longer than the grace: the lease goes to the next run."""
    now = now or utcnow()
    grace = core.settings.lease_grace_seconds
    if now - core.started_at <= timedelta(seconds=grace):
        return 0
    unseen = or_(Machine.last_seen.is_(None), Machine.last_seen < now - timedelta(seconds=grace))
    with core.db.read() as s:
        due = list(s.scalars(select(Run.id).join(Credential, Credential.id == Run.lease_credential_id)
                             .outerjoin(Machine, Machine.id == Run.machine_id)
                             .where(Run.status == RunStatus.RUNNING, Credential.max_concurrent_runs.is_not(None),
                                    unseen)).all())
    if not due:
        return 0
    with core.db.transaction() as s:
        ended: list[str | None] = []
        for rid in due:
            run = s.scalar(select(Run).where(Run.id == rid, Run.status == RunStatus.RUNNING).with_for_update())
            if run is None:
                continue
            run_state.fail(run, "machine_lost", f"the machine was not seen for longer than the credential lease's "
                                                f"grace ({grace} s)", now)
            record(s, actor="system:scheduler", action="run.expire", env_id=run.env_id, object_type="run",
                   object_id=run.id, detail={"reason": "machine_lost", "machine": run.machine_id,
                                             "credential": run.lease_credential_id})
            ended.append(run.lease_credential_id)
        woken = next_in_line(s, ended)
    wake(core, woken)
    return len(ended)


def leases_of(core: Core, actor: Actor, env_id: str, cred_ref: str) -> dict[str, Any]:
    """Who holds the credential's leases (run, machine, since when, oldest first) and how many runs wait for
    one; for whoever may see the credential."""
    with core.db.read() as s:
        cred, _ = authz.credential(s, actor, env_id, cred_ref, "view")
        rows = s.execute(select(Run.id, Run.machine_id, Machine.name, Run.started_at)
                         .outerjoin(Machine, Machine.id == Run.machine_id)
                         .where(Run.lease_credential_id == cred.id, Run.status == RunStatus.RUNNING)
                         .order_by(Run.started_at, Run.id)).all()
        waiting = s.scalar(select(func.count()).select_from(
            _queued_of(cred.id).where(Run.lease_waited_since.is_not(None)).subquery())) or 0
        return {"credential": cred.id, "max_concurrent_runs": cred.max_concurrent_runs,
                "leases": [{"run": rid, "machine": mid, "machine_name": name, "since": ts(since)}
                           for rid, mid, name, since in rows],
                "waiting": waiting}
