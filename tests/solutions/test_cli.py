"""The solution and dependencies commands against a real server process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from credflow.cli.main import app
from tests.conftest import ADMIN_TOKEN, Api
from tests.e2e.server import running_server
from tests.solutions.conftest import PASSWORD, credential_solution, flow_solution


@pytest.fixture
def live(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Api]]:
    env = {"CREDFLOW_DATABASE_URL": database_url, "CREDFLOW_BOOTSTRAP_TOKEN": ADMIN_TOKEN}
    with running_server(tmp_path / "data", env=env) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        api = Api(http, ADMIN_TOKEN)
        api.env = api.ok(api.get("/environments"))["items"][0]["id"]
        yield url, api


def test_the_cli_shows_dependencies_as_a_tree_and_moves_solutions(live: tuple[str, Api], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, api = live
    flow_solution(api, credential_solution(api)["id"])
    for key, value in {"CREDFLOW_SERVER": url, "CREDFLOW_TOKEN": ADMIN_TOKEN, "CREDFLOW_ENVIRONMENT": "default",
                       "CREDFLOW_CONFIG_DIR": str(tmp_path / "config"), "COLUMNS": "200"}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    def cf(*args: str, code: int = 0, stdin: str | None = None) -> tuple[str, str]:
        done = runner.invoke(app, list(args), input=stdin)
        assert done.exit_code == code, done.output + done.stderr
        return done.stdout, done.stderr

    tree, _ = cf("variable", "dependencies", "robot_pass")
    assert "Environment variable robot_pass" in tree and "└── " in tree
    for shown in ("Credentials (1)", "Robot login", "Robot conn", "Cloud flows (1)", "Nightly invoices"):
        assert shown in tree
    tree, _ = cf("credential", "dependencies", "Robot login")
    assert "Connections (1)" in tree and "Robot conn" in tree and "Nightly invoices" in tree
    assert json.loads(cf("credential", "dependencies", "Robot login", "--json")[0])["counts"]["connections"] == 1

    creds, flows = tmp_path / "creds.zip", tmp_path / "flows.zip"
    cf("solution", "export", "CredentialSolution", "-o", str(creds))
    cf("solution", "export", "FlowSolution", "-o", str(flows))
    assert PASSWORD.encode() not in creds.read_bytes() + flows.read_bytes()

    cf("env", "create", "production")
    cf("store", "create", "vault", "--env", "production")
    cf("secret", "put", "vault", "robot-password", "--stdin", "--env", "production", stdin="Prod-Pa55\n")
    _, errors = cf("solution", "import", str(flows), "--env", "production", code=1)
    assert "missing_dependencies" in errors and "CredentialSolution" in errors
    _, note = cf("solution", "import", str(creds), "--env", "production", "--dry-run")
    assert "dry run" in note
    assert json.loads(cf("variable", "list", "--env", "production", "--json")[0]) == []
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"environment_variables": {"robot_user": {"value": "prod@corp.example"}}}))
    table, _ = cf("solution", "import", str(creds), "--env", "production", "--settings", str(settings))
    assert "created" in table and "Robot login" in table
    cf("solution", "import", str(flows), "--env", "production")
    listed = json.loads(cf("solution", "list", "--env", "production", "--json")[0])
    assert [s["unique_name"] for s in listed] == ["CredentialSolution", "FlowSolution"]
    values = {v["schema_name"]: v.get("value") for v in json.loads(cf("variable", "list", "--env", "production",
                                                                          "--json")[0])}
    assert values["robot_user"] == "prod@corp.example"

    cf("solution", "create", "Extra", "--version", "2.0")
    _, added = cf("solution", "component", "add", "Extra", "credential", "Robot login", "--no-required")
    assert "added credential Robot login" in added
    cf("solution", "update", "Extra", "--version", "2.1")
    assert json.loads(cf("solution", "list", "--json")[0])[-1]["version"] == "2.1"
