"""Verified rotation: a credential may name a verification (a desktop flow and one of its connections). A new
version of its password is first given to one real run of that flow on that connection; until the run exits 0
every connection of the credential keeps the last verified version (``Credential.verified_version``). On success
they all move at once (one audit record); on failure the credential says ``failed`` and they stay.

The rotation worker calls ``due`` in the transaction that applies a new version (connections of credentials
with a verification are left out of that move, see ``connection_state.advance``); the machine's report of the
verification run calls ``finished`` in the transaction that records it. States, in the credential's columns:
``verification_status`` pending | passed | failed | None (never run), ``verification_version`` (the candidate
the status is about), ``verification_detail``, ``verification_checked_at``, ``verification_run_id``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.statuses import RunStatus
from credflow.persistence.tables import (
    Connection,
    Credential,
    DesktopFlow,
    MachineGroupMember,
    Run,
    SecretHead,
    SecretStore,
    utcnow,
)
from credflow.services import views
from credflow.services.core import Core
from credflow.services.secrets import connection_state

PENDING, PASSED, FAILED = "pending", "passed", "failed"
ACTOR = "system:verification"
RUN_TIMEOUT_SECONDS = 3600


def has_verification(cred: Credential) -> bool:
    return cred.verification_connection_id is not None and cred.verification_desktop_flow_id is not None


def view(cred: Credential) -> dict[str, Any] | None:
    """The credential's verification as callers see it, or None without one."""
    return views.verification_of(cred)


def _set(cred: Credential, status: str, version: str | None, detail: str) -> None:
    cred.verification_status, cred.verification_version, cred.verification_detail = status, version, detail
    cred.verification_checked_at = utcnow()


def _machines(s: Session, conn: Connection) -> list[str]:
    if conn.machine_id:
        return [conn.machine_id]
    if conn.machine_group_id:
        return list(s.scalars(select(MachineGroupMember.machine_id).where(
            MachineGroupMember.group_id == conn.machine_group_id)).all())
    return []


def start(core: Core, s: Session, cred: Credential, version: str) -> Run | None:
    """Queue the verification run of ``version`` (the run receives that version) and mark the credential
    pending; None when the verification cannot run (the credential then says failed, and why)."""
    conn = s.get(Connection, cred.verification_connection_id) if cred.verification_connection_id else None
    flow = s.get(DesktopFlow, cred.verification_desktop_flow_id) if cred.verification_desktop_flow_id else None
    problem = ("the verification's connection or desktop flow is gone" if conn is None or flow is None else
               "the verification's connection no longer uses this credential" if conn.credential_id != cred.id else
               "the verification's connection has no machine or machine group" if not _machines(s, conn) else None)
    if problem is not None or conn is None or flow is None:
        cred.verification_run_id = None
        _set(cred, FAILED, version, problem or "")
        record(s, actor=ACTOR, action="credential.verification_failed", env_id=cred.env_id,
               object_type="credential", object_id=cred.id, detail={"version": version, "reason": problem})
        return None
    now = utcnow()
    run = Run(env_id=cred.env_id, desktop_flow_id=flow.id, connection_id=conn.id, status=RunStatus.QUEUED,
              timeout_seconds=RUN_TIMEOUT_SECONDS, created_by=conn.owner_id, queued_at=now,
              deadline_at=now + timedelta(seconds=RUN_TIMEOUT_SECONDS), verifies_version=version)
    s.add(run)
    s.flush()
    cred.verification_run_id = run.id
    _set(cred, PENDING, version, f"run {run.id} of desktop flow {flow.name!r} on connection {conn.name!r} "
                                 "checks the new version")
    record(s, actor=ACTOR, action="credential.verification_started", env_id=cred.env_id, object_type="credential",
           object_id=cred.id, detail={"version": version, "run": run.id, "desktop_flow": flow.id,
                                      "connection": conn.id, "verified_version": cred.verified_version})
    machines = _machines(s, conn)
    sa_event.listen(s, "after_commit", lambda _s: core.emit("runs_queued", machines, 1), once=True)
    return run


def due(core: Core, s: Session, store: SecretStore, names: list[str]) -> int:
    """After the heads moved: every credential with a verification whose password's head is a version it has
    neither verified nor already checked gets a verification run. Returns how many were started."""
    started = 0
    for name in names:
        head = s.scalar(select(SecretHead.current_version).where(SecretHead.store_id == store.id,
                                                                 SecretHead.name == name))
        if head is None:
            continue
        creds = s.scalars(select(Credential).where(
            Credential.password_variable_id.in_(connection_state.variables_following(store.id, [name])),
            Credential.verification_connection_id.is_not(None)).with_for_update()).all()
        for cred in creds:
            if head == cred.verified_version or head == cred.verification_version:
                continue  # verified already, or being (or been) checked: a failed version waits for verify
            if cred.verified_version is not None and not connection_state.newer(store.kind, head,
                                                                                cred.verified_version):
                continue  # never backwards
            started += start(core, s, cred, head) is not None
    return started


def finished(s: Session, run: Run) -> None:
    """The machine reported ``run``; when it is the credential's current verification run, decide: exit code 0
    moves every connection of the credential to the version at once, anything else keeps them where they are."""
    if run.verifies_version is None or run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        return
    cred = s.scalar(select(Credential).where(Credential.verification_run_id == run.id).with_for_update())
    if cred is None or cred.verification_version != run.verifies_version:
        return  # a later version superseded this run
    version = run.verifies_version
    if run.status == RunStatus.SUCCEEDED:
        previous, cred.verified_version = cred.verified_version, version
        mine = select(Credential.id).where(Credential.id == cred.id)
        connection_state.set_connections_version(s, mine, version)  # they follow verified_version: one row moved
        moved = connection_state.count_connections(s, mine)
        _set(cred, PASSED, version, f"run {run.id} exited 0 with version {version}")
        record(s, actor=ACTOR, action="credential.verification_passed", env_id=cred.env_id,
               object_type="credential", object_id=cred.id,
               detail={"run": run.id, "from_version": previous, "to_version": version,
                       "connections_updated": moved})
        return
    _set(cred, FAILED, version, f"run {run.id} exited {run.exit_code} with version {version}; connections stay "
                                f"on version {cred.verified_version}")
    record(s, actor=ACTOR, action="credential.verification_failed", env_id=cred.env_id, object_type="credential",
           object_id=cred.id, detail={"run": run.id, "version": version, "exit_code": run.exit_code,
                                      "verified_version": cred.verified_version})
