"""``credflow credential update --verify-with FLOW CONNECTION / --no-verification`` and ``credflow credential
verify NAME`` against the test server, with a machine that takes the verification run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Api, sign_in_cli
from tests.rotation.conftest import connect, register_machine
from typer.testing import CliRunner

from credflow.cli.main import app


def test_set_run_and_clear_a_verification_from_the_command_line(
        client: TestClient, admin: Api, cred_setup: dict[str, Any], flow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = register_machine(admin)
    conn = connect(admin, machine, cred_setup["credential"]["id"], "verifier")["id"]
    sign_in_cli(monkeypatch, client, admin)

    def cf(*args: str, code: int = 0) -> Any:
        done = CliRunner().invoke(app, list(args))
        assert done.exit_code == code, done.output
        return json.loads(done.stdout) if "--json" in args else done.output

    made = cf("credential", "update", "Robot login", "--verify-with", "login", "verifier", "--json")["verification"]
    assert (made["desktop_flow"], made["connection"], made["status"]) == (flow, conn, None)
    assert "give --verify-with or --no-verification" in cf(
        "credential", "update", "Robot login", "--verify-with", "login", "verifier", "--no-verification", code=2)
    pending = cf("credential", "verify", "Robot login", "--json")
    assert (pending["status"], pending["version"]) == ("pending", "1")
    job = machine.claim()
    assert job is not None and job["run_id"] == pending["run"] and job["credential"]["version"] == "1"
    machine.finish(job["run_id"])
    shown = cf("credential", "show", "Robot login", "--json")["verification"]
    assert (shown["status"], shown["verified_version"]) == ("passed", "1")
    assert cf("credential", "update", "Robot login", "--no-verification", "--json")["verification"] is None
    assert "no verification" in cf("credential", "verify", "Robot login", code=1)
