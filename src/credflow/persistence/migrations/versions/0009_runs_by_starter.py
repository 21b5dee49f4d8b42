"""runs by starter: a basic user's runs list seeks instead of walking the environment's runs

A user who is not a system administrator sees the runs they started and the runs on their connections. The
runs they started are one range of ``ix_runs_env_created_by_id`` (environment, starter, id); the runs on their
connections one range per connection of ``ix_runs_connection_id_id`` (migration 0005). A page of their runs is read from those ranges,
however many runs of others the environment holds. The same index is in ``LIST_INDEXES``
(persistence/tables.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:30:00.000000
"""
from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_env_created_by_id", "runs", ["env_id", "created_by", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_env_created_by_id", table_name="runs")
