"""identity: personal access tokens, server-side web sessions, single sign-on logins, users who leave

Each user's one API token becomes a row of ``api_tokens`` (named "migrated", expiring 90 days after the upgrade),
and ``users.token_hash`` goes. Users and machines can be disabled; a removed user keeps its row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:16:04.991831
"""
from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from alembic import op
import sqlalchemy as sa
import credflow.persistence.tables


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

MIGRATED_TOKEN_DAYS = 90


def upgrade() -> None:
    op.create_table('sso_logins',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=True),
    sa.Column('sealed', sa.Text(), nullable=False),
    sa.Column('expires_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('sso_logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sso_logins_expires_at'), ['expires_at'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('via', sa.String(length=20), nullable=False),
    sa.Column('client', sa.String(length=100), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('expires_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('secret_hash')
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('machines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('removed_at', credflow.persistence.tables.UTCDateTime(timezone=True), nullable=True))

    # Every user's token becomes a personal access token that expires; then the column goes.
    users = sa.table("users", sa.column("id", sa.String), sa.column("token_hash", sa.String))
    tokens = sa.table("api_tokens", sa.column("id", sa.String), sa.column("user_id", sa.String),
                      sa.column("name", sa.String), sa.column("token_hash", sa.String),
                      sa.column("expires_at", credflow.persistence.tables.UTCDateTime()),
                      sa.column("created_at", credflow.persistence.tables.UTCDateTime()))
    conn = op.get_bind()
    now = datetime.now(UTC)
    rows = [{"id": f"{time.time_ns():016x}{os.urandom(8).hex()}", "user_id": uid, "name": "migrated",
             "token_hash": digest, "expires_at": now + timedelta(days=MIGRATED_TOKEN_DAYS), "created_at": now}
            for uid, digest in conn.execute(sa.select(users.c.id, users.c.token_hash)).all() if digest]
    if rows:
        op.bulk_insert(tokens, rows)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('token_hash')


def downgrade() -> None:
    # A user gets back one token column: its newest token that has not expired (or a placeholder no one holds).
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_hash', sa.VARCHAR(length=64), nullable=True))
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.String), sa.column("token_hash", sa.String))
    tokens = sa.table("api_tokens", sa.column("user_id", sa.String), sa.column("token_hash", sa.String),
                      sa.column("created_at", credflow.persistence.tables.UTCDateTime()))
    taken: set[str] = set()
    for (uid,) in conn.execute(sa.select(users.c.id)).all():
        digest = conn.scalar(sa.select(tokens.c.token_hash).where(tokens.c.user_id == uid)
                             .order_by(tokens.c.created_at.desc()).limit(1))
        if digest is None or digest in taken:
            digest = os.urandom(32).hex()
        taken.add(digest)
        conn.execute(users.update().where(users.c.id == uid).values(token_hash=digest))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('token_hash', existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_users_token_hash', ['token_hash'])
        batch_op.drop_column('removed_at')
        batch_op.drop_column('disabled')

    with op.batch_alter_table('machines', schema=None) as batch_op:
        batch_op.drop_column('disabled')

    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_user_id'))

    op.drop_table('web_sessions')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('sso_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sso_logins_expires_at'))

    op.drop_table('sso_logins')
