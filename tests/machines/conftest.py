"""Machines, connections and runs: a simulated machine that speaks the agent's API with a real key pair."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from nacl.public import PrivateKey

from credflow.crypto.sealing import open_sealed
from tests.conftest import Api, new_machine, sign_in_cli


@dataclass
class Machine:
    api: Api  # signed in with the machine token
    id: str
    key: PrivateKey

    def claim(self, wait: float = 0) -> httpx.Response:
        return self.api.post("/machines/me/jobs/claim", params={"wait": wait})

    def job(self, wait: float = 0) -> dict[str, Any] | None:
        resp = self.claim(wait)
        assert resp.status_code in (200, 204), resp.text
        return resp.json() if resp.status_code == 200 else None

    def open(self, job: dict[str, Any]) -> dict[str, Any]:
        return json.loads(open_sealed(self.key, job["sealed_credential"]))  # type: ignore[no-any-return]

    def finish(self, run_id: str, exit_code: int = 0, log: str = "done\n") -> httpx.Response:
        return self.api.post(f"/machines/me/jobs/{run_id}/result", {"exit_code": exit_code, "log": log})


def registration(api: Api, **body: Any) -> dict[str, Any]:
    return api.ok(api.post(api.e("/machine-registrations"), body), 201)  # type: ignore[no-any-return]


def register(admin: Api, name: str) -> Machine:
    return Machine(*new_machine(admin, name))


def desktop_flow(api: Api, name: str = "login-flow", command: list[str] | None = None) -> dict[str, Any]:
    body = {"name": name, "command": command or ["robot", "--login"]}
    return api.ok(api.post(api.e("/desktop-flows"), body), 201)  # type: ignore[no-any-return]


def connection(api: Api, name: str, target: dict[str, str], **body: Any) -> dict[str, Any]:
    return api.ok(api.post(api.e("/connections"), {"name": name, "target": target, **body}), 201)  # type: ignore[no-any-return]


def queue(api: Api, flow: str, conn: str, **body: Any) -> dict[str, Any]:
    return api.ok(api.post(api.e("/runs"), {"desktop_flow": flow, "connection": conn, **body}), 201)  # type: ignore[no-any-return]


def run(api: Api, run_id: str) -> dict[str, Any]:
    return api.ok(api.get(api.e(f"/runs/{run_id}")))  # type: ignore[no-any-return]


@pytest.fixture
def machine(admin: Api) -> Machine:
    return register(admin, "robot-pc-1")


@pytest.fixture
def setup(admin: Api, cred_setup: dict[str, Any], machine: Machine) -> dict[str, Any]:
    """A machine, a desktop flow and a connection on the machine that uses the credential."""
    flow = desktop_flow(admin)
    conn = connection(admin, "robot on pc-1", {"machine": machine.id}, credential=cred_setup["credential"]["id"])
    return {**cred_setup, "machine": machine, "flow": flow, "connection": conn}


@pytest.fixture
def cli(client: Any, admin: Api, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``credflow ...`` commands against the test server, signed in as the administrator."""
    from typer.testing import CliRunner

    from credflow.cli.main import app

    sign_in_cli(monkeypatch, client, admin)

    def invoke(*args: str, input: str | None = None) -> Any:
        result = CliRunner().invoke(app, list(args), input=input)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout

    return invoke
