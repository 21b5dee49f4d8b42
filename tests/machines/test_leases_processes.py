"""Credential leases with real processes: ``credflow serve`` (one on SQLite; two on one PostgreSQL database) and
real ``credflow agent run`` machines. A credential with ``max_concurrent_runs: 1`` is never used by two flows at
once, by the flows' own clocks, however many machines and server processes claim its runs."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import new_key_pair, pg_schema_url
from tests.machines.procs import agents, register_agents, server

TOKEN = "cfu_leases-admin-token-0123456789abcdef"
# Prints when it started and ended (this host's clock) around a short sleep.
SPAN = ("import os, time; s = time.time(); time.sleep(0.2); "
        "print('span', os.environ['CREDFLOW_RUN_ID'], repr(s), repr(time.time()))")


class Caller:
    """The administrator on one server process, in one environment."""

    def __init__(self, url: str, env: str | None = None, name: str = "leases") -> None:
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        self.env = env or self.call("POST", "/environments", {"name": name})["id"]

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        resp = self.http.request(method, path.replace("ENV", f"environments/{getattr(self, 'env', '')}"), json=body)
        assert resp.status_code < 400 if status is None else resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    def on(self, url: str) -> Caller:
        return Caller(url, self.env)

    def credential(self, max_concurrent_runs: int) -> str:
        self.call("POST", "/ENV/secret-stores", {"name": "vault", "kind": "builtin"})
        self.call("PUT", "/ENV/secret-stores/vault/secrets/bot", {"value": "M4inframe-Pa55!"})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "bot_user", "type": "text", "value": "BOT01"})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "bot_pass", "type": "secret",
                                                         "secret_reference": {"store": "vault", "name": "bot"}})
        return str(self.call("POST", "/ENV/credentials", {
            "name": "Mainframe bot", "username_variable": "bot_user", "password_variable": "bot_pass",
            "max_concurrent_runs": max_concurrent_runs})["id"])

    def ended(self, run_ids: list[str], timeout: float = 180) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = [self.call("GET", f"/ENV/runs/{r}") for r in run_ids]
            if all(r["status"] not in ("queued", "running") for r in got) or time.monotonic() > deadline:
                return got
            time.sleep(0.3)


@contextmanager
def servers(backend: str, root: Path, pg_available: bool) -> Iterator[list[str]]:
    """One server on SQLite, or two on one PostgreSQL database (sharing a data directory, so one master key)."""
    (root / "logs").mkdir()
    if backend == "sqlite":
        with server(root / "data", root / "logs" / "server-1.log", TOKEN) as url:
            yield [url]
        return
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = pg_schema_url()
    try:
        database_url = next(schema)
        with server(root / "data", root / "logs" / "server-1.log", TOKEN, database_url) as first, \
                server(root / "data", root / "logs" / "server-2.log", TOKEN, database_url) as second:
            yield [first, second]
    finally:
        schema.close()


def _overlaps(spans: list[tuple[float, float]]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    ordered = sorted(spans)
    return [(a, b) for a, b in itertools.pairwise(ordered) if b[0] < a[1]]


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ten_runs_on_five_agents_with_one_lease_never_overlap(backend: str, tmp_path: Path, pg_available: bool
                                                               ) -> None:
    names = [f"bot-pc-{i}" for i in range(5)]
    with servers(backend, tmp_path, pg_available) as urls:
        callers = [Caller(urls[0])]
        callers += [callers[0].on(u) for u in urls[1:]]
        admin = callers[0]
        regs = [(admin.call("POST", "/ENV/machine-registrations", {})["registration_token"], name, tmp_path / name)
                for name in names]
        for i, url in enumerate(urls):  # the agents spread over the server processes
            register_agents(url, regs[i::len(urls)])
        ids = {m["name"]: m["id"] for m in admin.call("GET", "/ENV/machines")["items"]}
        group = admin.call("POST", "/ENV/machine-groups", {"name": "bots", "machines": [ids[n] for n in names]})
        cred = admin.credential(max_concurrent_runs=1)
        conn = admin.call("POST", "/ENV/connections", {"name": "bots", "target": {"machine_group": group["id"]},
                                                       "credential": cred})
        flow = admin.call("POST", "/ENV/desktop-flows", {"name": "span", "command": [sys.executable, "-c", SPAN]})
        with agents([tmp_path / n for n in names], tmp_path / "logs"):
            run_ids = [callers[i % len(callers)].call("POST", "/ENV/runs", {"desktop_flow": flow["id"],
                                                                           "connection": conn["id"]})["id"]
                       for i in range(10)]
            done = admin.ended(run_ids)
        leases = admin.call("GET", f"/ENV/credentials/{cred}/leases")
    assert [r["status"] for r in done] == ["succeeded"] * 10, [(r["status"], r["reason_detail"]) for r in done]
    spans = {}
    for r in done:
        [line] = [ln.split() for ln in r["log"].splitlines() if ln.startswith("span ")]
        assert line[1] == r["id"]
        spans[r["id"]] = (float(line[2]), float(line[3]))
    assert _overlaps(list(spans.values())) == []  # by the flows' own clock: one at a time
    served = [(r["started_at"], r["finished_at"]) for r in done]
    assert _overlaps(served) == []  # and by the servers' records
    assert leases == {"credential": cred, "max_concurrent_runs": 1, "leases": [], "waiting": 0}
    assert any(r["lease_waited_since"] for r in done)  # ten runs on five machines: some waited for the lease


@pytest.mark.postgres
def test_concurrent_claims_on_two_server_processes_hand_out_no_more_leases_than_the_limit(
        tmp_path: Path, pg_available: bool) -> None:
    """Twelve machines claim at the same moment, half through each server process, for twelve queued runs of a
    credential with two leases: each round exactly two get a job."""
    with servers("postgresql", tmp_path, pg_available) as urls, ExitStack() as stack:
        admin = Caller(urls[0])
        other = admin.on(urls[1])
        machines: list[tuple[str, httpx.Client]] = []
        for i in range(12):
            reg = admin.call("POST", "/ENV/machine-registrations", {})["registration_token"]
            _, public = new_key_pair()
            made = admin.call("POST", "/machines/register", {"registration_token": reg, "name": f"m{i}",
                                                             "public_key": public})
            http = stack.enter_context(httpx.Client(base_url=f"{urls[i % 2]}/api/v1", timeout=30, headers={
                "Authorization": f"Bearer {made['machine_token']}"}))
            machines.append((made["machine_id"], http))
        group = admin.call("POST", "/ENV/machine-groups", {"name": "all", "machines": [m for m, _ in machines]})
        cred = admin.credential(max_concurrent_runs=2)
        conn = admin.call("POST", "/ENV/connections", {"name": "all", "target": {"machine_group": group["id"]},
                                                       "credential": cred})
        flow = admin.call("POST", "/ENV/desktop-flows", {"name": "noop", "command": ["true"]})
        queued = [(admin if i % 2 else other).call("POST", "/ENV/runs", {"desktop_flow": flow["id"],
                                                                        "connection": conn["id"]})["id"]
                  for i in range(12)]
        finished: list[str] = []
        for _ in range(6):
            start = threading.Barrier(len(machines))
            got: dict[str, dict[str, Any]] = {}

            def claim(machine: str, http: httpx.Client, start: threading.Barrier = start,
                      got: dict[str, dict[str, Any]] = got) -> None:
                start.wait()
                resp = http.post("/machines/me/jobs/claim")
                assert resp.status_code in (200, 204), resp.text
                if resp.status_code == 200:
                    got[machine] = resp.json()

            threads = [threading.Thread(target=claim, args=m) for m in machines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # Two leases: two jobs, the two oldest runs still queued, and the listing shows exactly those.
            taken = sorted(job["run_id"] for job in got.values())
            assert taken == queued[len(finished):len(finished) + 2], (taken, got.keys())
            held = admin.call("GET", f"/ENV/credentials/{cred}/leases")
            assert sorted(x["run"] for x in held["leases"]) == taken
            assert held["waiting"] == len(queued) - len(finished) - 2
            clients = dict(machines)
            for machine, job in got.items():
                clients[machine].post(f"/machines/me/jobs/{job['run_id']}/result", json={"exit_code": 0, "log": ""})
                finished.append(job["run_id"])
        assert [r["status"] for r in admin.ended(queued, timeout=5)] == ["succeeded"] * 12
