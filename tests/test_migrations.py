"""The schema is made by migrations, and the migrations match the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from credflow.persistence.db import alembic_config, make_engine, migrate
from credflow.persistence.tables import Base, Run

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.empty_database
def test_migrations_from_empty_to_head_make_every_table(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate(engine)  # a second start finds the schema at head and changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    engine.dispose()


@pytest.mark.empty_database
def test_active_runs_get_their_deadline_when_deadlines_are_added(database_url: str) -> None:
    """Migration 0010: a run queued or running before it times out when it did before (its deadline is set from
    its times), so the scheduler, which reads deadlines, still fails it."""
    engine = make_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:  # the runs alone, without the rows they refer to
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        conn.begin()
        cfg = alembic_config(database_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        if not sqlite:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for rid, status, started in (("q", "queued", None), ("r", "running", T0 + timedelta(minutes=5)),
                                     ("s", "succeeded", T0 + timedelta(minutes=5))):
            conn.execute(text("INSERT INTO runs (id, env_id, desktop_flow_id, connection_id, status, timeout_seconds,"
                              " queued_at, started_at) VALUES (:id, 'e', 'f', 'c', :status, 600, :q, :s)"),
                         {"id": rid, "status": status, "q": T0, "s": started})
        command.upgrade(cfg, "head")
        conn.commit()
    with engine.connect() as conn:
        got = {rid: at for rid, at in conn.execute(select(Run.id, Run.deadline_at))}
    assert got == {"q": T0 + timedelta(minutes=10), "r": T0 + timedelta(minutes=15), "s": None}
    engine.dispose()
