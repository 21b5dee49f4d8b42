"""Replicas benchmark: two ``credflow serve`` processes (A and B) on one PostgreSQL database, simulated agents.

    python bench/replicas.py [--quick] [--agents 200] [--jobs N] [--idle SECONDS]

A fresh PostgreSQL schema per run. The agents (async httpx, registered machines, all in one machine group) behave
like ``credflow agent run``: long-poll claims of ``DEFAULT_WAIT_SECONDS``, a heartbeat every 10 s only while no
claim is in flight (a waiting claim marks the machine seen), and one request per job (the result with
``?next=``). Measured in the same run:

- ``queue_to_claim_p50_ms`` / ``_p99_ms``: every agent waits on B; runs are queued on A one at a time; from the
  moment the POST of the run is sent to A until the job arrives at an agent on B (after ``WARM_UP`` runs that are
  not counted).
- ``idle_queries_per_agent_minute``: SQL statements both servers sent while every agent waited on B and nothing
  was queued, per agent and minute, counted in the servers (``bench/_counted.py``: a SQLAlchemy
  ``before_cursor_execute`` listener enabled by ``CREDFLOW_BENCH_STATEMENTS``; pg_stat_statements is not
  loaded here). Statements of requests (claims, heartbeats, their authentication) and of the claims' sweeps
  count; those of the background threads (rotation worker, poller, scheduler), which do not grow with the
  agents, are shown apart (``background_queries_per_server_minute``) and in ``idle_queries_per_agent_minute_all``.
- ``jobs_per_s_1_replica`` / ``_2_replicas`` and ``scale_ratio`` (2 over 1): the same queue drained by every
  agent on B, then by half the agents on A and half on B.

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _server import clean_env, database, free_port, log, stop
from sqlalchemy import Engine, create_engine, text

from credflow.agent.worker import DEFAULT_WAIT_SECONDS
from credflow.crypto.sealing import new_key_pair

TOKEN = "cfu_bench-replicas-token-0123456789abcdef"
HEARTBEAT_SECONDS = 10.0
PARK_SECONDS = 5.0  # after the agents' claims are sent, before the first run is queued
# Runs queued and claimed before the samples: the first of a server process's claims and queueings prepare their
# statements (SQLAlchemy's compiled cache, psycopg's prepared statements) and are 2-3 times slower than the rest.
WARM_UP = 3
COUNTED = str(Path(__file__).parent / "_counted.py")


@contextmanager
def counted_server(data_dir: Path, env: dict[str, str], counts: Path, log_file: Path) -> Iterator[str]:
    port = free_port()
    with log_file.open("wb") as out:
        proc = subprocess.Popen([sys.executable, COUNTED, "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--data-dir", str(data_dir)], env={**env, "CREDFLOW_BENCH_STATEMENTS": str(counts)},
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: see {log_file}")
            time.sleep(0.1)
        yield url
    finally:
        stop(proc)


def read_counts(*paths: Path) -> dict[str, int]:
    total = {"requests": 0, "background": 0}
    for path in paths:
        for k, v in json.loads(path.read_text()).items():
            total[k] += v
    return total


class Agents:
    """Simulated agents: each claims (long poll) on its server and finishes every job with ``?next=``."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.claimed: dict[str, float] = {}  # run id -> when its job arrived
        self.in_claim = 0
        self.heartbeats = 0
        self.errors = 0  # answers 5xx (the database out of connections, say), each asked again
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, clients: list[httpx.AsyncClient], wait: float) -> None:
        for i, token in enumerate(self.tokens):
            self.tasks.append(asyncio.create_task(self._agent(clients[i % len(clients)], token, wait)))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def _agent(self, http: httpx.AsyncClient, token: str, wait: float) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        claiming = [False]
        beating = asyncio.create_task(self._heartbeats(http, headers, claiming))
        try:
            job: dict[str, Any] | None = None
            while True:
                self.in_claim += 1
                claiming[0] = True
                try:
                    if job is None:
                        resp = await http.post("/api/v1/machines/me/jobs/claim", params={"wait": wait},
                                               headers=headers)
                    else:
                        resp = await http.post(f"/api/v1/machines/me/jobs/{job['run_id']}/result",
                                               params={"next": wait}, json={"exit_code": 0, "log": "ok\n"},
                                               headers=headers)
                finally:
                    self.in_claim -= 1
                    claiming[0] = False
                if resp.status_code == 200:
                    job = resp.json()
                    self.claimed[job["run_id"]] = time.perf_counter()
                elif resp.status_code == 204:
                    job = None
                elif resp.status_code >= 500:  # as the agent does: ask again a moment later (a result, again)
                    self.errors += 1
                    await asyncio.sleep(0.5)
                else:
                    raise RuntimeError(f"{resp.status_code}: {resp.text}")
        finally:
            beating.cancel()

    async def _heartbeats(self, http: httpx.AsyncClient, headers: dict[str, str], claiming: list[bool]) -> None:
        # As the real agent: a heartbeat every HEARTBEAT_SECONDS unless a claim of this agent is in flight (a
        # waiting claim marks the machine seen), so an idle agent rarely sends one.
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if not claiming[0]:
                self.heartbeats += 1
                await http.post("/api/v1/machines/me/heartbeat", json={"running": []}, headers=headers)



async def setup(a: httpx.AsyncClient, agents: int) -> tuple[str, str, list[str]]:
    async def call(method: str, path: str, body: Any = None, token: str | None = TOKEN) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await a.request(method, f"/api/v1{path}", json=body, headers=headers)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    env = (await call("GET", "/environments"))["items"][0]["id"]
    e = f"/environments/{env}"
    await call("POST", f"{e}/secret-stores", {"name": "vault", "kind": "builtin"})
    await call("PUT", f"{e}/secret-stores/vault/secrets/robot", {"value": "Bench-Pa55word!"})
    await call("POST", f"{e}/environment-variables", {"schema_name": "u", "type": "text", "value": "robot"})
    await call("POST", f"{e}/environment-variables", {"schema_name": "p", "type": "secret",
                                                      "secret_reference": {"store": "vault", "name": "robot"}})
    cred = await call("POST", f"{e}/credentials", {"name": "c", "username_variable": "u", "password_variable": "p"})
    flow = await call("POST", f"{e}/desktop-flows", {"name": "noop", "command": ["true"]})

    async def machine(i: int) -> str:
        reg = await call("POST", f"{e}/machine-registrations", {})
        _, public = new_key_pair()
        made = await call("POST", "/machines/register", {"registration_token": reg["registration_token"],
                                                         "name": f"sim-{i}", "public_key": public}, token=None)
        return str(made["machine_token"])

    tokens: list[str] = []
    for start in range(0, agents, 20):
        tokens += await asyncio.gather(*(machine(i) for i in range(start, min(agents, start + 20))))
    ids = [m["id"] for m in (await call("GET", f"{e}/machines?limit=500"))["items"]]
    group = await call("POST", f"{e}/machine-groups", {"name": "pool", "machines": ids})
    conn = await call("POST", f"{e}/connections", {"name": "pool", "target": {"machine_group": group["id"]},
                                                   "credential": cred["id"]})
    return f"/api/v1{e}/runs", json.dumps({"desktop_flow": flow["id"], "connection": conn["id"]}), tokens


async def queue(a: httpx.AsyncClient, runs_path: str, body: str) -> tuple[str, float]:
    sent = time.perf_counter()
    resp = await a.post(runs_path, content=body, headers={"Authorization": f"Bearer {TOKEN}",
                                                            "Content-Type": "application/json"})
    resp.raise_for_status()
    return str(resp.json()["id"]), sent


async def settle(agents: Agents, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while agents.in_claim < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def finished_runs(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM runs WHERE status = 'succeeded'")).scalar_one())


async def drain(agents: Agents, urls: list[str], a: httpx.AsyncClient, runs_path: str, body: str, jobs: int,
                engine: Engine) -> float:
    """Queue ``jobs`` runs (no agent running), then let the agents drain them, spread over the servers at
    ``urls``: jobs per second, until the database holds every result (an agent learns that its last result was
    stored only when the long poll that follows it ends, empty-handed, ``DEFAULT_WAIT_SECONDS`` later). Each
    agent has its own HTTP client and connection, as real agents do (one client shared by hundreds of connections
    spends more time in its pool than the servers do)."""
    sem = asyncio.Semaphore(8)

    async def one() -> None:
        async with sem:
            await queue(a, runs_path, body)

    await asyncio.gather(*(one() for _ in range(jobs)))
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    clients = [httpx.AsyncClient(base_url=urls[i % len(urls)], limits=limits, timeout=DEFAULT_WAIT_SECONDS + 30)
               for i in range(len(agents.tokens))]
    try:
        target = await asyncio.to_thread(finished_runs, engine) + jobs
        started = time.perf_counter()
        agents.start(clients, DEFAULT_WAIT_SECONDS)
        deadline = time.monotonic() + 300
        while await asyncio.to_thread(finished_runs, engine) < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the agents did not drain {jobs} jobs within 300 s ({agents.errors} answers 5xx)")
            await asyncio.sleep(0.02)
        took = time.perf_counter() - started
        await agents.stop()
    finally:
        for client in clients:
            await client.aclose()
    return jobs / took


async def bench(url_a: str, url_b: str, counts: list[Path], n_agents: int, samples: int, idle: float, jobs: int,
                database_url: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=n_agents + 20, max_keepalive_connections=n_agents + 20)
    async with httpx.AsyncClient(base_url=url_a, limits=limits, timeout=DEFAULT_WAIT_SECONDS + 30) as a, \
            httpx.AsyncClient(base_url=url_b, limits=limits, timeout=DEFAULT_WAIT_SECONDS + 30) as b:
        log(f"registering {n_agents} machines ...")
        runs_path, body, tokens = await setup(a, n_agents)
        agents = Agents(tokens)
        agents.start([b], DEFAULT_WAIT_SECONDS)
        await settle(agents, n_agents)
        # every claim is sent, but B may still be working through their first looks (one statement each, in its
        # thread pool): a run queued now would wait behind them, which measures the agents' arrival, not a wake-up
        await asyncio.sleep(PARK_SECONDS)
        log(f"queueing {samples} runs on A, one at a time, {n_agents} agents waiting on B ...")
        latencies = []
        for i in range(WARM_UP + samples):
            run_id, sent = await queue(a, runs_path, body)
            while run_id not in agents.claimed:
                await asyncio.sleep(0.0005)
            if i >= WARM_UP:
                latencies.append((agents.claimed[run_id] - sent) * 1000)
            await asyncio.sleep(0.02)
        log("slowest queue-to-claim samples (sample: ms): " + ", ".join(
            f"{i}: {ms:.0f}" for i, ms in sorted(enumerate(latencies), key=lambda x: -x[1])[:5]))
        await settle(agents, n_agents)
        log(f"idle for {idle:.0f} s, {n_agents} agents waiting on B ...")
        await asyncio.sleep(2)
        before, t0, beats = read_counts(*counts), time.perf_counter(), agents.heartbeats
        await asyncio.sleep(idle)
        after, minutes = read_counts(*counts), (time.perf_counter() - t0) / 60
        idle_beats = agents.heartbeats - beats
        await agents.stop()
        log(f"draining {jobs} jobs with one replica (B), then with two ...")
        engine = create_engine(database_url)
        try:
            one = await drain(Agents(tokens), [url_b], a, runs_path, body, jobs, engine)
            two = await drain(Agents(tokens), [url_a, url_b], a, runs_path, body, jobs, engine)
        finally:
            engine.dispose()
    latencies.sort()
    requests = after["requests"] - before["requests"]
    background = after["background"] - before["background"]
    return {
        "queue_to_claim_p50_ms": round(statistics.median(latencies), 2),
        "queue_to_claim_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "idle_queries_per_agent_minute": round(requests / n_agents / minutes, 3),
        "idle_queries_per_agent_minute_all": round((requests + background) / n_agents / minutes, 3),
        "background_queries_per_server_minute": round(background / 2 / minutes, 1),
        "jobs_per_s_1_replica": round(one, 1), "jobs_per_s_2_replicas": round(two, 1),
        "scale_ratio": round(two / one, 3), "idle_seconds": round(minutes * 60, 1),
        "heartbeats_while_idle": idle_beats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, a shorter idle window")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--idle", type=float, help="seconds of the idle window (default 120, quick 60)")
    args = parser.parse_args()
    samples, jobs = (50, 400) if args.quick else (200, 2000)
    jobs = args.jobs or jobs
    idle = args.idle or (60.0 if args.quick else 120.0)
    with tempfile.TemporaryDirectory(prefix="credflow-bench-") as tmp:
        root = Path(tmp)
        with database("postgresql", root) as url:
            env = clean_env(CREDFLOW_BOOTSTRAP_TOKEN=TOKEN, CREDFLOW_DATABASE_URL=url,
                            CREDFLOW_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
            counts = [root / "a.json", root / "b.json"]
            with counted_server(root / "a", env, counts[0], root / "a.log") as url_a, \
                    counted_server(root / "b", env, counts[1], root / "b.log") as url_b:
                result = asyncio.run(bench(url_a, url_b, counts, args.agents, samples, idle, jobs, url))
    out = {**result, "agents": args.agents, "claim_wait_seconds": DEFAULT_WAIT_SECONDS, "jobs": jobs,
           "samples": samples, "quick": args.quick,
           "queries_counted": "SQL statements sent by both servers (SQLAlchemy before_cursor_execute listener, "
                              "bench/_counted.py); BEGIN/COMMIT and the LISTEN connection not counted",
           "queue_to_claim": "from sending POST /runs to A until the job reaches an agent waiting on B"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
