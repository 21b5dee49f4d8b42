"""everyday use: why a run ended

A run that ends other than by its flow's exit code 0 keeps a ``reason`` (a stable code: ``cancelled``,
``exit_code``, ``timed_out``, ``machine_lost``, ...) and ``reason_detail`` (a sentence), so that run lists can
say why without reading logs. Runs that ended before keep ``reason`` null; their log says why. A cancelled run
now has the status ``cancelled`` (runs cancelled before stay ``failed``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:10:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reason_detail', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('reason_detail')
        batch_op.drop_column('reason')
