"""``credflow health`` and ``credflow notification-hook`` against a real server process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credflow.cli.main import app
from tests.conftest import ADMIN_TOKEN
from tests.health.conftest import iso, wait_for
from tests.rotation.servers import server


def test_health_exits_2_when_anything_is_critical(tmp_path: Path, database_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with server(tmp_path / "data", database_url) as (admin, _):
        for key, value in {"CREDFLOW_SERVER": str(admin.http.base_url), "CREDFLOW_TOKEN": ADMIN_TOKEN,  # type: ignore[union-attr]
                           "CREDFLOW_CONFIG_DIR": str(tmp_path / "config"), "COLUMNS": "200",
                           "CREDFLOW_ENVIRONMENT": admin.env}.items():
            monkeypatch.setenv(key, value)
        runner = CliRunner()

        def cf(*args: str, code: int = 0) -> str:
            done = runner.invoke(app, list(args))
            assert done.exit_code == code, done.output + done.stderr
            return done.stdout

        assert json.loads(cf("health", "--json"))["items"] == []
        admin.store("vault")
        soon = iso(datetime.now(UTC) + timedelta(days=2))
        admin.ok(admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"), {"value": "one", "expires_at": soon}))
        admin.text_var("robot_user", "robot")
        admin.secret_var("robot_pass", "vault", "robot-pw")
        admin.credential("Robot login", "robot_user", "robot_pass")
        rows = [line.split("\t") for line in cf("health").splitlines()]
        assert [row[:3] for row in rows] == [["warning", "expires_soon", "Robot login"]]

        admin.ok(admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"),
                           {"value": "two", "expires_at": "2020-01-01T00:00:00Z"}))
        wait_for(lambda: runner.invoke(app, ["health"]).exit_code == 2)
        got = json.loads(cf("health", "--json", code=2))
        assert [(f["severity"], f["kind"]) for f in got["items"]] == [("critical", "expired")]

        made = json.loads(cf("notification-hook", "create", "http://127.0.0.1:9/hook", "--min-severity", "critical",
                             "--json"))
        assert made["secret"] and made["min_severity"] == "critical"
        listed = json.loads(cf("notification-hook", "list", "--json"))
        assert [h["id"] for h in listed] == [made["id"]] and "secret" not in listed[0]
        cf("notification-hook", "delete", made["id"], "--yes")
        assert json.loads(cf("notification-hook", "list", "--json")) == []
        done = runner.invoke(app, ["notification-hook", "create", "http://169.254.169.254/x"])
        assert done.exit_code == 1 and "link-local" in done.stderr
