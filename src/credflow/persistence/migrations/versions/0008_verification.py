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

Connections on a credential no longer each keep the version their next run receives: null means it follows its
credential (pinned, else verified, else the secret's head), so a rotation moves one head row instead of every
connection. ``ix_connections_held`` and ``ix_connections_unreadable`` find the few rows a rotation still writes.

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
    # Connections follow their credential (secret_version null); a rotation writes only those held at a version
    # of their own or secret_unreadable, found by these partial indexes.
    held, unreadable = sa.text("secret_version IS NOT NULL"), sa.text("status = 'secret_unreadable'")
    # Two columns each, so that SQLite's planner (no statistics) prefers them to ix_connections_credential_id.
    op.create_index('ix_connections_held', 'connections', ['credential_id', 'secret_version'], sqlite_where=held,
                    postgresql_where=held)
    op.create_index('ix_connections_unreadable', 'connections', ['credential_id', 'status'], sqlite_where=unreadable,
                    postgresql_where=unreadable)


def downgrade() -> None:
    op.drop_index('ix_connections_unreadable', table_name='connections')
    op.drop_index('ix_connections_held', table_name='connections')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('verifies_version')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        for name in ('verified_version', 'verification_run_id', 'verification_version', 'verification_checked_at',
                     'verification_detail', 'verification_status', 'verification_connection_id',
                     'verification_desktop_flow_id'):
            batch_op.drop_column(name)
