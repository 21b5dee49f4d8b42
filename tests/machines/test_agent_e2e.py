"""End to end: a real server process and real ``credflow agent run`` processes run desktop flows."""

from __future__ import annotations

import hashlib
import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from credflow.domain.masking import contains_any
from tests.conftest import pg_schema_url
from tests.machines.procs import agents, files_holding, register_agents, server

TOKEN = "cfu_e2e-admin-token-0123456789abcdef"

# Prints the hashes, then tries hard to leak: the values inside longer text, split across lines, on stderr.
PROVE = """
import hashlib, os, sys
u, p = os.environ["CREDFLOW_USERNAME"], os.environ["CREDFLOW_PASSWORD"]
print("user-sha256", hashlib.sha256(u.encode()).hexdigest())
print("pass-sha256", hashlib.sha256(p.encode()).hexdigest())
print("login as " + u + " with password=" + p + ";")
print(p[:6]); print(p[6:], flush=True)
sys.stderr.write("stderr: " + p[:3] + "\\r\\n" + p[3:] + "\\n")
"""
# Notes which machine ran which run, and when, in a file outside every state directory.
RECORD = ("import os, sys, time; s = time.time(); time.sleep(0.05); "
          "line = f\"{os.environ['CREDFLOW_RUN_ID']} {os.environ['CREDFLOW_MACHINE_ID']} {s} {time.time()}\\n\"; "
          "open(sys.argv[1], 'a').write(line)")


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class Live:
    url: str
    root: Path
    data: Path
    logs: Path
    database_url: str | None  # None: SQLite in the data dir


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_available: bool
         ) -> Iterator[Live]:
    """One real server per backend for this module; each test works in an environment of its own."""
    root = tmp_path_factory.mktemp(f"e2e-{request.param}")
    (root / "logs").mkdir()
    if request.param == "sqlite":
        with server(root / "data", root / "logs" / "server.log", TOKEN) as url:
            yield Live(url, root, root / "data", root / "logs", None)
        return
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = pg_schema_url()
    try:
        database_url = next(schema)
        with server(root / "data", root / "logs" / "server.log", TOKEN, database_url) as url:
            yield Live(url, root, root / "data", root / "logs", database_url)
    finally:
        schema.close()


class Admin:
    def __init__(self, live: Live, env_name: str) -> None:
        self.live = live
        self.http = httpx.Client(base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=30)
        self.env = self.call("POST", "/environments", {"name": env_name})["id"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, path.replace("ENV", f"environments/{getattr(self, 'env', '')}"), json=body)
        assert resp.status_code < 400, resp.text
        return resp.json() if resp.content else None

    def on(self, url: str) -> Admin:
        """The same caller, talking to another server process."""
        other = Admin.__new__(Admin)
        other.live, other.env = self.live, self.env
        other.http = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        return other

    def machines(self, names: list[str]) -> list[str]:
        regs = [(self.call("POST", "/ENV/machine-registrations", {})["registration_token"], name,
                 self.live.root / name) for name in names]
        register_agents(self.live.url, regs)
        ids = {m["name"]: m["id"] for m in self.call("GET", "/ENV/machines")["items"]}
        return [ids[n] for n in names]

    def credential(self, username: str, password: str) -> str:
        self.call("POST", "/ENV/secret-stores", {"name": "vault", "kind": "builtin"})
        self.call("PUT", "/ENV/secret-stores/vault/secrets/robot", {"value": password})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "robot_user", "type": "text",
                                                         "value": username})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "robot_pass", "type": "secret",
                                                         "secret_reference": {"store": "vault", "name": "robot"}})
        return str(self.call("POST", "/ENV/credentials", {"name": "Robot", "username_variable": "robot_user",
                                                          "password_variable": "robot_pass"})["id"])

    def wait_for(self, run_ids: list[str], timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = [self.call("GET", f"/ENV/runs/{r}") for r in run_ids]
            if all(r["status"] in ("succeeded", "failed") for r in got) or time.monotonic() > deadline:
                return got
            time.sleep(0.2)


def test_the_agent_runs_the_flow_with_the_credential_and_no_value_is_kept(live: Live) -> None:
    username, password = "robot.e2e@corp.example", "E2e-Sup3r-S3cret-Pa55!"
    typed_username, typed_password = "typed-svc-account", "Typed-0nly-Pa55word?"
    admin = Admin(live, "e2e-delivery")
    [machine] = admin.machines(["pc-e2e"])
    state = live.root / "pc-e2e"
    cred = admin.credential(username, password)
    flow = admin.call("POST", "/ENV/desktop-flows", {"name": "prove", "command": [sys.executable, "-c", PROVE]})
    conns = [admin.call("POST", "/ENV/connections", {"name": "with credential", "target": {"machine": machine},
                                                     "credential": cred}),
             admin.call("POST", "/ENV/connections", {"name": "typed", "target": {"machine": machine},
                                                     "username": typed_username, "password": typed_password})]
    with agents([state], live.logs):
        ids = [admin.call("POST", "/ENV/runs", {"desktop_flow": flow["id"], "connection": c["id"]})["id"]
               for c in conns]
        done = admin.wait_for(ids)
    for got, (user, secret) in zip(done, [(username, password), (typed_username, typed_password)], strict=True):
        assert got["status"] == "succeeded" and got["exit_code"] == 0 and got["machine"] == machine, got
        assert f"user-sha256 {_sha(user)}" in got["log"] and f"pass-sha256 {_sha(secret)}" in got["log"]
        assert "login as *** with password=***;" in got["log"]
        assert not contains_any(got["log"], [user, secret]) and secret[:6] not in got["log"]
    assert done[0]["secret_version"] == "1"
    audit = admin.call("GET", f"/ENV/audit?object={ids[0]}")["items"]
    assert [r["detail"]["version"] for r in audit if r["action"] == "credential.deliver"] == ["1"]
    everywhere = [live.data, state, live.logs]
    for value in (password, typed_password, typed_username):
        assert files_holding(everywhere, value.encode()) == [], value
    # The credential's username is a text environment variable: its value is data of the server's database
    # (the API shows it to makers), so on SQLite it sits in the database file and nowhere else.
    holding = files_holding(everywhere, username.encode())
    assert holding == [] if live.database_url else {f.name for f in holding} <= {"credflow.db", "credflow.db-wal"}
    assert sorted(f.name for f in state.iterdir()) == ["machine.json", "private.key"]
    assert all(f.stat().st_mode & 0o077 == 0 for f in state.iterdir())


def test_three_agents_on_a_group_run_thirty_runs_each_exactly_once(live: Live) -> None:
    admin = Admin(live, "e2e-pool")
    names = ["pool-1", "pool-2", "pool-3"]
    machines = admin.machines(names)
    ran = live.root / "ran.txt"
    group = admin.call("POST", "/ENV/machine-groups", {"name": "pool", "machines": machines})
    conn = admin.call("POST", "/ENV/connections", {"name": "pool", "target": {"machine_group": group["id"]},
                                                   "credential": admin.credential("pool-user", "Pool-Pa55word!")})
    flow = admin.call("POST", "/ENV/desktop-flows", {"name": "record", "command": [sys.executable, "-c", RECORD,
                                                                                   str(ran)]})
    with agents([live.root / n for n in names], live.logs):
        ids = [admin.call("POST", "/ENV/runs", {"desktop_flow": flow["id"], "connection": conn["id"]})["id"]
               for _ in range(30)]
        done = admin.wait_for(ids)
    assert [r["status"] for r in done] == ["succeeded"] * 30
    lines = [line.split() for line in ran.read_text().splitlines()]
    assert sorted(line[0] for line in lines) == sorted(ids)  # every run ran, and ran once
    assert {r["machine"] for r in done} == set(machines) == {line[1] for line in lines}
    for m in machines:  # no machine ever ran two flows at once, by the flows' own clocks and by the server's
        spans = sorted((float(line[2]), float(line[3])) for line in lines if line[1] == m)
        assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans)), spans
        served = sorted((r["started_at"], r["finished_at"]) for r in done if r["machine"] == m)
        assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(served)), served


def test_cancelling_a_run_stops_the_flow_on_the_machine(live: Live) -> None:
    admin = Admin(live, "e2e-cancel")
    [machine] = admin.machines(["pc-cancel"])
    pid_file = live.root / "flow.pid"
    sleeper = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    flow = admin.call("POST", "/ENV/desktop-flows", {"name": "slow", "command": [sys.executable, "-c", sleeper]})
    conn = admin.call("POST", "/ENV/connections", {"name": "c", "target": {"machine": machine},
                                                   "credential": admin.credential("slow-user", "Slow-Pa55!")})
    with agents([live.root / "pc-cancel"], live.logs):
        run_id = admin.call("POST", "/ENV/runs", {"desktop_flow": flow["id"], "connection": conn["id"]})["id"]
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the flow never started"
            time.sleep(0.1)
        pid = int(pid_file.read_text())
        admin.call("POST", f"/ENV/runs/{run_id}/cancel")
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists(), "the flow process still runs"
        nxt = admin.call("POST", "/ENV/runs", {"desktop_flow": flow["id"], "connection": conn["id"]})["id"]
        while admin.call("GET", f"/ENV/runs/{nxt}")["status"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert admin.call("GET", f"/ENV/runs/{nxt}")["status"] == "running"  # the machine is free again
        admin.call("POST", f"/ENV/runs/{nxt}/cancel")
    got = admin.call("GET", f"/ENV/runs/{run_id}")
    assert (got["status"], got["reason"]) == ("cancelled", "cancelled")
    # The agent's report came before it took the next run: kept, and the run stays cancelled.
    assert "the flow was stopped" in got["log"] and got["exit_code"] is not None


def test_a_run_queued_on_another_server_process_reaches_a_waiting_machine(live: Live) -> None:
    admin = Admin(live, "e2e-two-servers")
    [machine] = admin.machines(["pc-two"])
    flow = admin.call("POST", "/ENV/desktop-flows", {"name": "hello", "command": [sys.executable, "-c", "print(1)"]})
    conn = admin.call("POST", "/ENV/connections", {"name": "c", "target": {"machine": machine},
                                                   "username": "two-user", "password": "Two-Pa55!"})
    with server(live.data, live.logs / "server-2.log", TOKEN, live.database_url) as second_url, \
            agents([live.root / "pc-two"], live.logs):
        other = admin.on(second_url)
        time.sleep(2)  # the agent now waits in a 10 s long-poll claim on the first server
        queued_at = time.monotonic()
        run_id = other.call("POST", "/ENV/runs", {"desktop_flow": flow["id"], "connection": conn["id"]})["id"]
        [got] = other.wait_for([run_id], timeout=30)
        took = time.monotonic() - queued_at
    assert got["status"] == "succeeded" and got["machine"] == machine
    assert took < 5, took  # found by the first server's periodic re-check, long before the poll ends
