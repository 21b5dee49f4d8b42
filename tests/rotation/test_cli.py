"""The rotation commands against a real server process: event keys, notify, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import ADMIN_TOKEN
from tests.rotation.conftest import connect, register_machine, wait_for
from tests.rotation.servers import server
from typer.testing import CliRunner

from credflow.cli.main import app


def test_event_keys_notify_and_status_from_the_command_line(tmp_path: Path, database_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with server(tmp_path / "data", database_url) as (admin, _):
        admin.store("vault")
        admin.secret("vault", "robot-password", "one")
        admin.text_var("robot_user", "robot")
        admin.secret_var("robot_pass", "vault", "robot-password")
        cred = admin.credential("Robot login", "robot_user", "robot_pass")
        conn = connect(admin, register_machine(admin), cred["id"], "c")["id"]
        for key, value in {"CREDFLOW_SERVER": str(admin.http.base_url), "CREDFLOW_TOKEN": ADMIN_TOKEN,  # type: ignore[union-attr]
                           "CREDFLOW_CONFIG_DIR": str(tmp_path / "config"), "COLUMNS": "200"}.items():
            monkeypatch.setenv(key, value)
        runner = CliRunner()

        def cf(*args: str, code: int = 0) -> str:
            done = runner.invoke(app, list(args))
            assert done.exit_code == code, done.output + done.stderr
            return done.stdout

        made = json.loads(cf("event-key", "create", "--json"))
        assert made["key"].startswith("cfe_")
        listed = json.loads(cf("event-key", "list", "--json"))
        assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
        cf("rotation", "notify", "builtin://default/vault", "robot-password")
        cf("rotation", "notify", "https://nowhere.vault.azure.net", "robot-password", code=1)
        admin.secret("vault", "robot-password", "two")
        wait_for(lambda: admin.ok(admin.get(admin.e(f"/connections/{conn}")))["secret_version"] == "2")
        status = json.loads(cf("rotation", "status", "--json"))
        assert status["secrets"][0]["current_version"] == "2" and status["secrets"][0]["connections"] == 1
        assert "robot-password" in cf("rotation", "status")
        cf("event-key", "delete", made["id"], "--yes")
        assert json.loads(cf("event-key", "list", "--json")) == []
