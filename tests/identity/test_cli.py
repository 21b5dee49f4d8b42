"""``credflow token create|list|revoke`` against the test server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from credflow.cli.main import app
from tests.conftest import Api, problem, sign_in_cli


def _cli(monkeypatch: pytest.MonkeyPatch, client: TestClient, api: Api) -> Any:
    sign_in_cli(monkeypatch, client, api)

    def invoke(*args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args and code == 0 else result.output

    return invoke


def test_tokens_from_the_cli(monkeypatch: pytest.MonkeyPatch, client: TestClient, admin: Api) -> None:
    maria = admin.user("maria")
    cli = _cli(monkeypatch, client, maria)
    made = cli("token", "create", "laptop", "--expires-in-days", "30", "--json")
    assert made["token"].startswith("cfu_") and made["name"] == "laptop"
    assert {t["name"] for t in cli("token", "list", "--json")} == {"initial", "laptop"}
    assert "invalid_request" in cli("token", "create", "forever", "--expires-in-days", "366", code=1)
    cli("token", "revoke", made["id"])
    problem(Api(client, made["token"]).get("/me"), 401)
    assert [t["name"] for t in cli("token", "list", "--json")] == ["initial"]

    admin_cli = _cli(monkeypatch, client, admin)
    (initial,) = admin_cli("token", "list", "--user", "maria@example.com", "--json")
    admin_cli("token", "revoke", initial["id"], "--user", maria.info["id"])
    problem(maria.get("/me"), 401)
    out = admin_cli("token", "revoke", initial["id"], "--user", maria.info["id"], code=1)
    assert "token_not_found" in out
