"""The agent replaces its machine token every 30 days by itself, and on ``credflow agent rotate-token``; the
new token is kept in the state directory at once and the old one stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from nacl.public import PrivateKey
from typer.testing import CliRunner

from credflow.agent import state as agent_state
from credflow.agent.worker import Agent
from credflow.cli.main import app
from credflow.client import http as client_http
from tests.conftest import Api, new_machine, problem


def _agent(client: TestClient, token: str, machine_id: str, state_dir: Path, since: str | None) -> Agent:
    st = agent_state.AgentState("http://testserver", machine_id, token, "pc-1", "env", PrivateKey.generate(),
                                since)
    state_dir.mkdir(mode=0o700)
    agent_state.save_key(state_dir, st.private_key)
    agent_state.save(state_dir, st)
    agent = Agent(st, state_dir=state_dir)
    for c in (agent.http, agent.beat_http):
        c.http = TestClient(client.app, headers={"Authorization": f"Bearer {token}"})
    return agent


def test_the_agent_replaces_a_token_30_days_old(admin: Api, client: TestClient, tmp_path: Path) -> None:
    machine, machine_id, _ = new_machine(admin, "pc-1")
    old = datetime.now(UTC) - timedelta(days=31)
    agent = _agent(client, machine.token, machine_id, tmp_path / "state", old.isoformat())
    assert agent.maybe_rotate_token() is True
    kept = agent_state.load(tmp_path / "state")
    assert kept.machine_token != machine.token and kept.machine_token == agent.state.machine_token
    assert datetime.fromisoformat(kept.token_since.replace("Z", "+00:00")) > old + timedelta(days=30)
    problem(machine.post("/machines/me/heartbeat", {}), 401)
    agent.beat()  # the agent goes on with the new one
    assert agent.maybe_rotate_token() is False  # fresh now


def test_a_young_token_or_one_of_unknown_age_is_kept(admin: Api, client: TestClient, tmp_path: Path) -> None:
    machine, machine_id, _ = new_machine(admin, "pc-1")
    young = _agent(client, machine.token, machine_id, tmp_path / "a", datetime.now(UTC).isoformat())
    assert young.maybe_rotate_token() is False
    unknown = _agent(client, machine.token, machine_id, tmp_path / "b", None)
    assert unknown.maybe_rotate_token() is False
    assert agent_state.load(tmp_path / "b").token_since is not None  # counted from now on
    assert machine.post("/machines/me/heartbeat", {}).status_code == 200


def test_credflow_agent_rotate_token_and_a_running_agent_takes_it(admin: Api, client: TestClient, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    machine, machine_id, _ = new_machine(admin, "pc-1")
    running = _agent(client, machine.token, machine_id, tmp_path / "state", datetime.now(UTC).isoformat())
    real = client_http.Client

    def local(server: str, token: str | None, timeout: float = 30.0) -> Any:
        made = real(server, token, timeout)
        made.http = TestClient(client.app, headers={"Authorization": f"Bearer {token}"})
        return made

    monkeypatch.setattr(client_http, "Client", local)
    result = CliRunner().invoke(app, ["agent", "rotate-token", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    kept = agent_state.load(tmp_path / "state")
    assert kept.machine_token != machine.token
    problem(machine.post("/machines/me/heartbeat", {}), 401)
    assert running._reread_token() is True
    running.beat()
