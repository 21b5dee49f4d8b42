"""credential leases: at most N runs at once per credential

- ``credentials.max_concurrent_runs``: how many runs may use the credential at once; null for no limit;
- ``runs.lease_credential_id``: the credential whose lease a running run holds (set when it is claimed);
  a lease is a running run, so it ends with the run;
- ``runs.lease_waited_since``: when a queued run was first held back waiting for a free lease.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import credflow.persistence.tables


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_concurrent_runs', sa.Integer(), nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_credential_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_waited_since', credflow.persistence.tables.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_runs_lease', ['lease_credential_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_lease')
        batch_op.drop_column('lease_waited_since')
        batch_op.drop_column('lease_credential_id')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_column('max_concurrent_runs')
