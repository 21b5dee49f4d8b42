"""The machine side of runs: heartbeats, claiming the next job, and reporting its result.

A claim picks the oldest queued run whose connection targets the machine or one of its groups (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL; SQLite's write transaction already serializes), resolves the credential through
the version cache and seals it to that machine's public key. A machine holding a running job gets nothing.
Every delivery is audited: machine, run, credential and version, never a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from credflow.audit.chain import batched, record
from credflow.crypto import sealing
from credflow.domain.errors import Conflict, DomainError, NotFound, RuleViolation, Unauthenticated
from credflow.domain.masking import mask
from credflow.domain.statuses import RunStatus
from credflow.persistence.tables import Connection, Credential, Machine, MachineGroupMember, Run, utcnow
from credflow.services.access import authz
from credflow.services.automation import delivery, leases, run_state
from credflow.services.automation.run_state import fail, run_view
from credflow.services.core import Actor, Core
from credflow.services.secrets import verification
from credflow.services.views import ts

BUSY: Final = "busy"
MAX_SKIPPED = 50  # undeliverable runs failed in one claim before answering
SWEEP_PART = 500  # waiting machines asked about in one statement
# How exact a claim keeps ``last_seen`` (at most a tenth of a lease's grace): offline after 60 s.
SEEN_PRECISION = timedelta(seconds=5)


class LogTooLarge(DomainError):
    status, code, title = 413, "log_too_large", "The log is too large"


@contextmanager
def _writing(core: Core) -> Iterator[Session]:
    """A write transaction. SQLite admits one writer and makes the others sleep and retry; queueing the machines'
    writes on a lock instead keeps claims quick and even when many agents call at once."""
    if not core.db.is_sqlite:
        with core.db.transaction() as s:
            yield s
        return
    with core.write_lock, core.db.transaction() as s:
        yield s


def _my_runs(machine_id: str, env_id: str | None):  # type: ignore[no-untyped-def]
    """Queued runs whose connection targets the machine or one of its groups. The queue index (env_id, status,
    queued_at) walks the queued runs in order; each run's connection is found by its key."""
    groups = select(MachineGroupMember.group_id).where(MachineGroupMember.machine_id == machine_id)
    return (select(Run).join(Connection, Connection.id == Run.connection_id)
            .where(Run.env_id == env_id, Run.status == RunStatus.QUEUED,
                   or_(Connection.machine_id == machine_id, Connection.machine_group_id.in_(groups))))


def heartbeat(core: Core, actor: Actor, running: list[str] | None = None) -> dict[str, Any]:
    """Mark the machine seen. With ``running`` (the runs the agent is executing), runs the server thinks the
    machine holds but the agent does not run turn failed, and ``cancel`` names the runs the agent should stop."""
    authz.require_machine(actor)
    now = utcnow()
    cancel: list[str] = []
    lost: list[str | None] = []
    with _writing(core) as s:
        s.execute(update(Machine).where(Machine.id == actor.id).values(last_seen=now))
        if running is not None:
            held = s.scalars(select(Run).where(Run.machine_id == actor.id, Run.status == RunStatus.RUNNING)
                             .with_for_update()).all()
            for run in held:
                if run.id not in running:
                    fail(run, "machine_lost", "the machine no longer runs it", now)
                    lost.append(run.lease_credential_id)
                    record(s, actor=actor.label, action="run.lost", env_id=run.env_id, object_type="run",
                           object_id=run.id, detail={"machine": actor.id})
            cancel = [r for r in running if r not in {run.id for run in held}]
        woken = leases.next_in_line(s, lost)
    leases.wake(core, woken)
    return {"machine_id": actor.id, "status": "online", "last_seen": ts(now), "cancel": cancel}


def has_work(core: Core, actor: Actor) -> bool:
    """A cheap read: is a run waiting that this machine may take?"""
    with core.db.read() as s:
        return bool(s.scalar(select(exists(_my_runs(actor.id, actor.env_id)
                                           .where(leases.without_full_credentials())))))


def look(core: Core, actor: Actor) -> bool | str:
    """One statement at the start of a claim: mark the machine seen, and say BUSY while it holds a running run,
    else whether a run waits that it may take (False while it is disabled)."""
    authz.require_machine(actor)
    busy = select(Run.id).where(Run.machine_id == actor.id, Run.status == RunStatus.RUNNING).exists()
    facts = (Machine.disabled, busy, _my_runs(actor.id, actor.env_id).where(leases.without_full_credentials()).exists())
    touch = update(Machine).where(Machine.id == actor.id).values(last_seen=utcnow())
    with _writing(core) as s:
        if core.db.is_sqlite:  # SQLite's RETURNING cannot qualify other tables' columns: two statements there
            s.execute(touch.execution_options(synchronize_session=False))
            row = s.execute(select(*facts).where(Machine.id == actor.id)).first()
        else:
            row = s.execute(touch.returning(*facts).execution_options(synchronize_session=False)).first()
    if row is None:
        raise Unauthenticated("the machine no longer exists", code="machine_not_found")
    disabled, holds, work = row
    return BUSY if holds else bool(work) and not disabled


def with_work(core: Core, machine_ids: list[str]) -> set[str]:
    """Of ``machine_ids`` (machines waiting for a job), those that are enabled and have a run waiting for them:
    one read, however many machines wait (in parts of ``SWEEP_PART``)."""
    groups = select(MachineGroupMember.group_id).where(MachineGroupMember.machine_id == Machine.id)
    work = (select(Run.id).join(Connection, Connection.id == Run.connection_id)
            .where(Run.env_id == Machine.env_id, Run.status == RunStatus.QUEUED,
                   or_(Connection.machine_id == Machine.id, Connection.machine_group_id.in_(groups)),
                   leases.without_full_credentials()).exists())
    found: set[str] = set()
    with core.db.read() as s:
        for i in range(0, len(machine_ids), SWEEP_PART):
            part = machine_ids[i:i + SWEEP_PART]
            found.update(s.scalars(select(Machine.id).where(Machine.id.in_(part), Machine.disabled.is_(False),
                                                            work)))
    return found


def claim(core: Core, actor: Actor) -> dict[str, Any] | str | None:
    """The next job for the calling machine, None when there is none, or BUSY while it holds one."""
    authz.require_machine(actor)
    with _writing(core) as s, batched(s):
        return _claim(core, s, actor)


def _claim(core: Core, s: Session, actor: Actor) -> dict[str, Any] | str | None:
    busy = exists().where(Run.machine_id == actor.id, Run.status == RunStatus.RUNNING)
    row = s.execute(select(Machine, busy).where(Machine.id == actor.id).with_for_update(of=Machine)).first()
    if row is None:
        raise Unauthenticated("the machine no longer exists", code="machine_not_found")
    machine, holds = row
    now = utcnow()
    precision = min(SEEN_PRECISION, timedelta(seconds=core.settings.lease_grace_seconds / 10))
    if machine.last_seen is None or now - machine.last_seen >= precision:
        machine.last_seen = now  # a busy machine's every job would otherwise write it
    if machine.disabled:
        return None  # an administrator disabled it: it claims nothing until enabled
    if holds:
        return BUSY
    leased = leases.ClaimLeases()
    for _ in range(MAX_SKIPPED):
        # With its connection, which ``admit`` reads (held here, the session has it); the delivery reads it again.
        found = s.execute(_my_runs(machine.id, machine.env_id).add_columns(Connection, Credential.max_concurrent_runs)
                          .outerjoin(Credential, Credential.id == Connection.credential_id)
                          .where(leases.not_held_back(leased)).order_by(Run.queued_at, Run.id).limit(1)
                          .with_for_update(skip_locked=True, of=Run)).first()
        if found is None:
            return None
        run, _conn, limit = found
        if not leases.admit(core, s, run, leased, limited=limit is not None):
            continue
        job = _deliver(core, s, machine, run)
        if job is not None:
            return job
    return None


def _deliver(core: Core, s: Session, machine: Machine, run: Run) -> dict[str, Any] | None:
    # Every row the delivery reads, in one statement; held here, the checks' ``get``s find them in the session.
    loaded = delivery.load(s, run.connection_id, run.desktop_flow_id, run)
    conn, flow = loaded.conn, loaded.flow
    if conn is None or flow is None:
        fail(run, "connection_or_flow_gone", "the connection or desktop flow is gone")
        return None
    try:
        got = delivery.resolve(core, s, run, conn, flow)
    except delivery.Undeliverable as exc:
        fail(run, exc.reason, f"{exc.detail}; the credential was not delivered")
        record(s, actor=f"machine:{machine.id}", action="run.undeliverable", env_id=run.env_id,
               object_type="run", object_id=run.id,
               detail={"reason": exc.reason, "connection": conn.id, "credential": conn.credential_id})
        return None
    payload = json.dumps({"username": got.username, "password": got.password, "version": got.version})
    sealed = sealing.seal(machine.public_key, payload.encode())
    now = utcnow()
    run.status, run.machine_id, run.started_at, run.secret_version = RunStatus.RUNNING, machine.id, now, got.version
    run.deadline_at = now + timedelta(seconds=run.timeout_seconds)
    run.lease_credential_id = got.credential_id  # a lease of it, held until the run ends
    if conn.secret_version is not None and got.version not in (None, conn.secret_version) and \
            run.verifies_version is None:  # a connection held at its own version: the one it received now
        conn.secret_version = got.version
    record(s, actor=f"machine:{machine.id}", action="credential.deliver", env_id=run.env_id, object_type="run",
           object_id=run.id, detail={"machine": machine.id, "run": run.id, "connection": conn.id,
                                     "credential": got.credential_id, "version": got.version})
    return {"run_id": run.id, "command": list(flow.command), "sealed_credential": sealed,
            "desktop_flow": flow.id, "connection": conn.id, "secret_version": got.version,
            "timeout_seconds": run.timeout_seconds, "max_log_bytes": core.settings.max_log_bytes,
            "started_at": ts(now)}


def finish(core: Core, actor: Actor, run_id: str, exit_code: int, log: str) -> dict[str, Any]:
    """Record the result of a run the machine holds. An oversize log or a run it does not hold changes nothing.
    A run cancelled while the machine ran it takes the result once (its log and exit code, what the flow did
    before it was stopped) and stays ``cancelled``; any other run that is no longer running refuses it."""
    authz.require_machine(actor)
    raw = _checked(core, exit_code, log)
    with _writing(core) as s:
        view, woken = _finish(core, s, actor, run_id, exit_code, raw)
    leases.wake(core, woken)
    return view


def _checked(core: Core, exit_code: int, log: str) -> bytes:
    raw = log.encode("utf-8", "surrogatepass")
    size = len(raw)
    if size > core.settings.max_log_bytes:
        raise LogTooLarge(f"the log has {size} bytes; at most {core.settings.max_log_bytes} are kept",
                          max_log_bytes=core.settings.max_log_bytes)
    if not -(2**31) <= exit_code < 2**31:
        raise RuleViolation("exit_code is a 32-bit integer", code="invalid_exit_code")
    return raw


def _finish(core: Core, s: Session, actor: Actor, run_id: str, exit_code: int, raw: bytes
            ) -> tuple[dict[str, Any], list[str]]:
    run = s.scalar(select(Run).where(Run.id == run_id).with_for_update())
    if run is None or run.machine_id != actor.id:
        raise NotFound(f"this machine does not hold run {run_id!r}", code="run_not_held")
    cancelled = run.status == RunStatus.CANCELLED and run.exit_code is None
    if run.status != RunStatus.RUNNING and not cancelled:
        raise Conflict(f"the run is no longer running (it has {run.status})", code="run_not_running",
                       status_now=run.status)
    # Every row the log's scrubbing reads, in one statement; held (the session forgets rows no one holds), the
    # lease's ``next_in_line`` finds the credential among them.
    loaded = delivery.load(s, run.connection_id, version=run.secret_version)
    text = _log_text(core, s, run, raw, loaded)
    if cancelled:
        run.log, run.exit_code = text + (run.log or ""), exit_code  # the flow's output, then the cancellation
    else:
        run.log = text
        run_state.finished_by_flow(run, exit_code)
        verification.finished(s, run)
    woken = [] if cancelled else leases.next_in_line(s, [run.lease_credential_id])
    record(s, actor=actor.label, action="run.finish", env_id=run.env_id, object_type="run", object_id=run.id,
           detail={"machine": actor.id, "exit_code": exit_code, "status": run.status})
    return run_view(run, include_log=False), woken


def _log_text(core: Core, s: Session, run: Run, raw: bytes, loaded: delivery.Loaded | None = None) -> str:
    """The log as it is kept: the run's credential values masked, and what every database can keep."""
    loaded = loaded or delivery.load(s, run.connection_id, version=run.secret_version)  # one statement, every row
    conn = loaded.conn
    values = delivery.values_for_scrub(core, s, conn, run.secret_version, loaded) if conn is not None else []
    return mask(raw.decode("utf-8", "replace").replace("\x00", ""), values)


def report(core: Core, actor: Actor, run_id: str, exit_code: int, log: str) -> bool:
    """``finish`` for an agent that asks for its next job in the same request. True: the result is stored now;
    False: the run already holds exactly this result (the request was sent again because its answer was lost),
    which is not stored a second time. Any other refusal is ``finish``'s."""
    try:
        finish(core, actor, run_id, exit_code, log)
        return True
    except Conflict as exc:
        if exc.code != "run_not_running":
            raise
        with core.db.read() as s:
            run = s.get(Run, run_id)
            if run is None or run.machine_id != actor.id or run.exit_code != exit_code:
                raise
            text, kept = _log_text(core, s, run, log.encode("utf-8", "surrogatepass")), run.log or ""
            # A cancelled run keeps the flow's output followed by the cancellation's.
            if kept != text and not (run.status == RunStatus.CANCELLED and kept.startswith(text)):
                raise
        return False


def report_and_claim(core: Core, actor: Actor, run_id: str, exit_code: int, log: str, claim_next: bool = True
                     ) -> dict[str, Any] | str | None:
    """``report``, then (with ``claim_next``) ``claim``, in one transaction: the agent's one request per job. A
    result sent again because its answer was lost is stored once and the job that answer carried comes again
    (``redeliver``). The result is stored even when the machine cannot claim (``claim``'s refusal is raised after)."""
    authz.require_machine(actor)
    raw = _checked(core, exit_code, log)
    gone: Unauthenticated | None = None
    try:
        with _writing(core) as s, batched(s):
            _, woken = _finish(core, s, actor, run_id, exit_code, raw)
            job = None
            if claim_next:
                try:
                    job = _claim(core, s, actor)
                except Unauthenticated as exc:
                    gone = exc
    except Conflict as exc:
        if exc.code != "run_not_running":
            raise
        if not report(core, actor, run_id, exit_code, log):  # sent again: the job its lost answer carried
            again = redeliver(core, actor, run_id)
            if again is not None:
                return again
        return claim(core, actor) if claim_next else None
    leases.wake(core, woken)
    if gone is not None:
        raise gone
    return job


def redeliver(core: Core, actor: Actor, after: str) -> dict[str, Any] | None:
    """The job handed out in answer to the result of run ``after`` when that answer was lost: the run this
    machine holds that started once that result was stored, delivered again (the agent never got it); None when
    it holds none."""
    authz.require_machine(actor)
    with _writing(core) as s:
        machine = s.scalar(select(Machine).where(Machine.id == actor.id).with_for_update())
        prev = s.get(Run, after)
        if machine is None or prev is None or prev.machine_id != machine.id or prev.finished_at is None:
            return None
        run = s.scalar(select(Run).where(Run.machine_id == machine.id, Run.status == RunStatus.RUNNING,
                                         Run.started_at >= prev.finished_at).with_for_update())
        return _deliver(core, s, machine, run) if run is not None else None
