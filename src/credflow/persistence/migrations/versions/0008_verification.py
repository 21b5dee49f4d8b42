"""verified rotation: a credential's verification and the last verified version

A credential may name a verification: a desktop flow and one of its connections. When a new version of its
password arrives, that flow runs on that connection with the new version first; until it exits 0 every
connection of the credential keeps the last verified version (``verified_version``).

- ``verification_desktop_flow_id``, ``verification_connection_id``: the verification, or null for none;
- ``verification_status``: ``pending`` | ``passed`` | ``failed`` | null (never run);
- ``verification_detail``: a sentence on the last outcome; ``verification_checked_at``: when it was decided;
- ``verification_version``: the version the status is about (the candidate);
- ``verification_run_id``: the run checking it;
- ``verified_version``: the version the credential's connections stay on until a candidate passes.

``runs.verifies_version``: a verification run receives this version of its credential's password, not the
connection's.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import credflow.persistence.tables


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification_desktop_flow_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('verification_connection_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('verification_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('verification_detail', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('verification_checked_at',
                                      credflow.persistence.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verification_version', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('verification_run_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('verified_version', sa.String(length=200), nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verifies_version', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('verifies_version')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        for name in ('verified_version', 'verification_run_id', 'verification_version', 'verification_checked_at',
                     'verification_detail', 'verification_status', 'verification_connection_id',
                     'verification_desktop_flow_id'):
            batch_op.drop_column(name)
