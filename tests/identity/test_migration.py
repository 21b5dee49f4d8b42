"""The upgrade to personal access tokens: each user's one token becomes a token that expires, and nothing that
refers to a user is lost while the users table is rebuilt (SQLite rebuilds it to drop the old token column)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from credflow.api.app import create_app
from credflow.persistence.db import alembic_config, make_engine
from credflow.services.core import build_core
from credflow.settings import Settings
from tests.conftest import Api
from tests.identity.test_tokens import _days_from_now

OLD_TOKEN = "cfu_a-token-from-before-tokens-expired-0123456789"


@pytest.mark.empty_database
def test_old_tokens_keep_working_until_they_expire_and_roles_survive(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    cfg = alembic_config(database_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with engine.begin() as c:
        at = {"t": "2026-01-01T00:00:00+00:00"}
        c.execute(text("INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'default', :t)"), at)
        c.execute(text("INSERT INTO environments (id, org_id, name, created_at) VALUES ('e1', 'o1', 'default', :t)"),
                  at)
        c.execute(text("INSERT INTO users (id, org_id, name, email, token_hash, must_change_password, "
                       "organization_admin, created_at) VALUES ('u1', 'o1', 'admin', 'admin@localhost', :h, false, "
                       "true, :t)"), {**at, "h": hashlib.sha256(OLD_TOKEN.encode()).hexdigest()})
        c.execute(text("INSERT INTO environment_roles (user_id, env_id, role) "
                       "VALUES ('u1', 'e1', 'system_administrator')"))
        c.execute(text("INSERT INTO teams (id, env_id, name, created_at) VALUES ('t1', 'e1', 'ops', :t)"), at)
        c.execute(text("INSERT INTO team_members (team_id, user_id) VALUES ('t1', 'u1')"))
    engine.dispose()

    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, run_workers=False)
    core = build_core(settings)  # migrates to head
    try:
        with TestClient(create_app(settings, core)) as client:
            old = Api(client, OLD_TOKEN)
            me = old.ok(old.get("/me"))
            assert me["environment_roles"] == {"e1": "system_administrator"}
            assert me["disabled"] is False and me["removed_at"] is None
            (token,) = old.ok(old.get("/me/tokens"))["items"]
            assert token["name"] == "migrated"
            assert 89.9 < _days_from_now(token["expires_at"]) <= 90
            team = old.ok(old.get("/environments/e1/teams/t1"))
            assert [m["id"] for m in team["members"]] == ["u1"]
    finally:
        core.db.engine.dispose()
