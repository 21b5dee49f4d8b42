"""run deadlines: the scheduler finds timed-out runs in an index instead of reading every active run

``runs.deadline_at`` is when a run times out: ``queued_at + timeout_seconds`` while it waits,
``started_at + timeout_seconds`` once it runs. ``ix_runs_deadline`` (status, deadline_at) gives the scheduler the
runs past it, however many runs are queued. Active runs get theirs here; finished runs need none.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 19:20:00.000000
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import credflow.persistence.tables

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _utc(value: datetime | str) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_at', credflow.persistence.tables.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_runs_deadline', ['status', 'deadline_at'], unique=False)
    runs = sa.table('runs', sa.column('id', sa.String), sa.column('status', sa.String),
                    sa.column('queued_at', credflow.persistence.tables.UTCDateTime()),
                    sa.column('started_at', credflow.persistence.tables.UTCDateTime()),
                    sa.column('timeout_seconds', sa.Integer),
                    sa.column('deadline_at', credflow.persistence.tables.UTCDateTime()))
    bind = op.get_bind()
    active = bind.execute(sa.select(runs.c.id, runs.c.status, runs.c.queued_at, runs.c.started_at,
                                    runs.c.timeout_seconds).where(runs.c.status.in_(("queued", "running")))).all()
    for rid, status, queued_at, started_at, timeout in active:
        since = started_at if status == "running" and started_at is not None else queued_at
        if since is not None:
            bind.execute(sa.update(runs).where(runs.c.id == rid)
                         .values(deadline_at=_utc(since) + timedelta(seconds=timeout or 3 * 3600)))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_deadline')
        batch_op.drop_column('deadline_at')
