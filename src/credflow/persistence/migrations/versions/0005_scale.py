"""lists paged in the database: indexes for keyset paging and filters

Every API list reads one page along an index: the rows of one environment (and of one filter) in the order of
their time-ordered id (audit records: their sequence number), from the cursor on. The same indexes are
``LIST_INDEXES`` in persistence/tables.py.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:00:00.000000
"""
from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_runs_env_id_id", "runs", ["env_id", "id"]),
    ("ix_runs_env_status_id", "runs", ["env_id", "status", "id"]),
    ("ix_runs_connection_id_id", "runs", ["connection_id", "id"]),
    ("ix_runs_desktop_flow_id_id", "runs", ["desktop_flow_id", "id"]),
    ("ix_runs_machine_id_id", "runs", ["machine_id", "id"]),
    ("ix_connections_env_id_id", "connections", ["env_id", "id"]),
    ("ix_connections_env_status_id", "connections", ["env_id", "status", "id"]),
    ("ix_connections_env_owner_id", "connections", ["env_id", "owner_id", "id"]),
    ("ix_credentials_env_id_id", "credentials", ["env_id", "id"]),
    ("ix_variables_env_id_id", "environment_variables", ["env_id", "id"]),
    ("ix_machines_env_id_id", "machines", ["env_id", "id"]),
    ("ix_desktop_flows_env_id_id", "desktop_flows", ["env_id", "id"]),
    ("ix_audit_env_seq", "audit_records", ["env_id", "seq"]),
    ("ix_audit_env_actor_seq", "audit_records", ["env_id", "actor", "seq"]),
    ("ix_audit_env_at", "audit_records", ["env_id", "at"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
