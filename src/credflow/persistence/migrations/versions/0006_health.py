"""credential health: secret version expiry, findings and notification hooks

- ``secret_cache.version_created_at`` / ``expires_at``: what the vault says of each version credflow reads;
- ``builtin_secrets.expires_at``: the expiry a builtin secret was written with;
- ``credentials.max_age_days``: a password older than this is reported ``not_rotated``;
- ``notification_hooks``: URLs told when a finding appears or clears, with their sealed signing secret;
- ``hook_notices``: the findings each hook has been told of, so that a restart does not tell them again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import credflow.persistence.tables


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('secret_cache', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version_created_at', credflow.persistence.tables.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('expires_at', credflow.persistence.tables.UTCDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('builtin_secrets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', credflow.persistence.tables.UTCDateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_age_days', sa.Integer(), nullable=True))
    op.create_table('notification_hooks',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('env_id', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('min_severity', sa.String(length=10), nullable=False),
    sa.Column('sealed_secret', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['env_id'], ['environments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notification_hooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_hooks_env_id'), ['env_id'], unique=False)
    op.create_table('hook_notices',
    sa.Column('hook_id', sa.String(length=32), nullable=False),
    sa.Column('finding_key', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('finding', sa.JSON(), nullable=False),
    sa.Column('sent_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['hook_id'], ['notification_hooks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('hook_id', 'finding_key')
    )


def downgrade() -> None:
    op.drop_table('hook_notices')
    with op.batch_alter_table('notification_hooks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_hooks_env_id'))
    op.drop_table('notification_hooks')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_column('max_age_days')
    with op.batch_alter_table('builtin_secrets', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('secret_cache', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('version_created_at')
