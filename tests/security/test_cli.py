"""The same refusals through the CLI, which speaks the API: the attacker sees the rule's code, the owner can
restrict the flows that run with her credential."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from credflow.cli.main import app
from tests.conftest import sign_in_cli
from tests.security.conftest import Scene


def test_the_cli_shows_the_attacker_the_refusal_and_changes_nothing(scene: Scene, client: TestClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in_cli(monkeypatch, client, scene.mallory)
    runner = CliRunner()
    wrapped = runner.invoke(app, ["credential", "create", "mine", "--username", "prod_user", "--password",
                                  "prod_pass"])
    assert wrapped.exit_code == 1 and "store_access_denied" in wrapped.output
    edited = runner.invoke(app, ["variable", "update", "prod_user", "--value", "attacker@evil.example"])
    assert edited.exit_code == 1 and "not_owner" in edited.output
    a = scene.alice
    assert a.ok(a.get(a.e("/environment-variables/prod_user")))["value"] == "svc-prod@corp.example"


def test_the_owner_restricts_and_frees_the_flows_of_her_credential(scene: Scene, client: TestClient,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in_cli(monkeypatch, client, scene.alice)
    runner = CliRunner()
    only = runner.invoke(app, ["credential", "update", "Production login", "--allow-flow", "invoice-bot",
                               "--json"])
    assert only.exit_code == 0, only.output
    assert json.loads(only.stdout)["allowed_desktop_flows"] == [scene.flow["id"]]
    free = runner.invoke(app, ["credential", "update", "Production login", "--any-flow", "--json"])
    assert free.exit_code == 0 and json.loads(free.stdout)["allowed_desktop_flows"] is None
