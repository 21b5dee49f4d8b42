"""What a run's status means, and how a run is shown.

A queued or running run is active. A run that ends any way but by its flow's own exit code 0 carries a
``reason``: a stable code (``cancelled``, ``timed_out``, ``machine_lost``, ``access_revoked``, ``exit_code``, ...)
and ``reason_detail``, a sentence; the log ends with the same, so a run's log says why on its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, true
from sqlalchemy.orm import Session

from credflow.domain.roles import EnvironmentRole
from credflow.domain.statuses import RunStatus
from credflow.persistence.tables import Connection, Run, utcnow
from credflow.services.access import authz
from credflow.services.core import Actor
from credflow.services.views import ts

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
MAX_REASON_DETAIL = 500
CANCELLED = "cancelled"
EXIT_CODE = "exit_code"
WAITING_FOR_LEASE = "credential_lease"  # a queued run held back until a lease of its credential is free


def _end(r: Run, status: RunStatus, reason: str, detail: str | None, now: datetime | None) -> None:
    r.status, r.finished_at = status, now or utcnow()
    r.reason, r.reason_detail = reason, detail[:MAX_REASON_DETAIL] if detail else None


def fail(r: Run, reason: str, detail: str | None = None, now: datetime | None = None) -> None:
    """End ``r`` as failed for ``reason`` (a stable code), saying why in its log."""
    _end(r, RunStatus.FAILED, reason, detail, now)
    r.log = (r.log or "") + f"[credflow] the run failed: {reason}{f' ({detail})' if detail else ''}\n"


def cancel(r: Run, by: str, now: datetime | None = None) -> None:
    """End ``r`` as cancelled by ``by`` (an actor label): a queued run never starts, a running one is stopped by
    its machine at its next heartbeat."""
    _end(r, RunStatus.CANCELLED, CANCELLED, f"cancelled by {by}", now)
    r.log = (r.log or "") + f"[credflow] the run was cancelled by {by}\n"


def finished_by_flow(r: Run, exit_code: int, now: datetime | None = None) -> None:
    """The flow ended with ``exit_code``: succeeded at 0, else failed with reason ``exit_code``."""
    r.exit_code = exit_code
    if exit_code == 0:
        r.status, r.finished_at, r.reason, r.reason_detail = RunStatus.SUCCEEDED, now or utcnow(), None, None
    else:
        _end(r, RunStatus.FAILED, EXIT_CODE, f"the flow exited with code {exit_code}", now)


def run_view(r: Run, include_log: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id, "status": r.status, "reason": r.reason, "reason_detail": r.reason_detail,
        "desktop_flow": r.desktop_flow_id, "connection": r.connection_id, "cloud_flow": r.cloud_flow_id,
        "machine": r.machine_id, "exit_code": r.exit_code, "secret_version": r.secret_version,
        "timeout_seconds": r.timeout_seconds, "created_by": r.created_by, "environment": r.env_id,
        "queued_at": ts(r.queued_at), "started_at": ts(r.started_at), "finished_at": ts(r.finished_at),
        "waiting_for": WAITING_FOR_LEASE if r.status == RunStatus.QUEUED and r.lease_waited_since else None,
        "lease_waited_since": ts(r.lease_waited_since)}
    if include_log:
        out["log"] = r.log or ""
    return out


def visible(actor: Actor, role: EnvironmentRole) -> ColumnElement[bool]:
    """The runs the caller sees: all, for system administrators; else the ones it started or that run on its
    connections."""
    if authz.env_allows(role, "connection.admin"):
        return true()
    return or_(Run.created_by == actor.id, Run.connection_id.in_(_own_connections(actor)))


def _own_connections(actor: Actor) -> Select[tuple[str]]:
    return select(Connection.id).where(Connection.owner_id == actor.id)


OWN_CONNECTIONS_APART = 50  # up to this many of a caller's connections, each one's runs are read apart


def visible_parts(s: Session, actor: Actor, role: EnvironmentRole, env_id: str) -> list[ColumnElement[bool]]:
    """``visible`` as the conditions it is one of (none for system administrators, who see every run): the runs
    the caller started, and the runs on each of their connections in the environment. Each is one range of an
    index on (column, id), which a database walks in id order by itself (one condition for all the connections
    would let it prefer walking every run of the environment)."""
    if authz.env_allows(role, "connection.admin"):
        return []
    own = list(s.scalars(_own_connections(actor).where(Connection.env_id == env_id)
                         .limit(OWN_CONNECTIONS_APART + 1)).all())
    apart = ([Run.connection_id == c for c in own] if len(own) <= OWN_CONNECTIONS_APART
             else [Run.connection_id.in_(_own_connections(actor))])
    return [Run.created_by == actor.id, *apart]


def recent(s: Session, actor: Actor, role: EnvironmentRole, *where: Any, limit: int = 10) -> list[dict[str, Any]]:
    """The latest ``limit`` runs that match ``where`` and the caller sees, newest first, without their logs."""
    rows = s.scalars(select(Run).where(*where, visible(actor, role))
                     .order_by(Run.queued_at.desc(), Run.id.desc()).limit(limit)).all()
    return [run_view(r, include_log=False) for r in rows]


def active_ids(s: Session, *where: Any) -> list[str]:
    """The ids of the active runs that match ``where``."""
    return list(s.scalars(select(Run.id).where(*where, Run.status.in_(ACTIVE))).all())


def delete_all(s: Session, *where: Any) -> None:
    """Delete the runs that match ``where`` (once none of them is active)."""
    for run in s.scalars(select(Run).where(*where)).all():
        s.delete(run)
    s.flush()
