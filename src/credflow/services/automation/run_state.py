"""What a run's status means: a queued or running run is active; a failed one says why at the end of its log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.domain.statuses import RunStatus
from credflow.persistence.tables import Run, utcnow

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def fail(r: Run, reason: str, now: datetime | None = None) -> None:
    r.status, r.finished_at = RunStatus.FAILED, now or utcnow()
    r.log = (r.log or "") + f"[credflow] the run failed: {reason}\n"


def active_ids(s: Session, *where: Any) -> list[str]:
    """The ids of the active runs that match ``where``."""
    return list(s.scalars(select(Run.id).where(*where, Run.status.in_(ACTIVE))).all())


def delete_all(s: Session, *where: Any) -> None:
    """Delete the runs that match ``where`` (once none of them is active)."""
    for run in s.scalars(select(Run).where(*where)).all():
        s.delete(run)
    s.flush()
