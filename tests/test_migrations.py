"""The schema is made by migrations, and the migrations match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from credflow.persistence.db import make_engine, migrate
from credflow.persistence.tables import Base


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
