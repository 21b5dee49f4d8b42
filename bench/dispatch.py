"""Dispatch benchmark: 50 concurrent simulated agents claim and finish jobs on a real credflow server.

    python bench/dispatch.py [--quick] [--agents 50] [--jobs N] [--database-url URL]

Starts ``credflow serve`` (SQLite in a temporary data dir unless --database-url), registers the simulated
machines (each with its own X25519 key, all in one machine group), queues the jobs, then lets every agent
claim (long poll), open its sealed credential and report a result with ``?next=`` (one request per job: its answer
is the next job) until the queue is empty. In the same run it
measures a bare authenticated no-op (``GET /api/v1/me`` with a machine token) at the same concurrency, beside
``/healthz``, the smallest write request (a heartbeat: one UPDATE and its commit; ``write_to_noop``,
``jobs_to_write``) and the endpoint of a bare FastAPI app served the same way (``noop_to_bare``, ``healthz_to_bare``),
and the memory of the server and of one real, idle ``credflow agent run`` process. Progress goes to stderr; the last
line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _bare import PATH as BARE_PATH
from _bare import bare_server
from _server import CREDFLOW, clean_env, log, rss_mb, server, stop

from credflow.crypto.sealing import new_key_pair, open_sealed

TOKEN = "cfu_bench-admin-token-0123456789"
PASSWORD = "Bench-Pa55word!"


async def setup(http: httpx.AsyncClient, agents: int, jobs: int) -> tuple[str, list[tuple[str, Any]]]:
    async def call(method: str, path: str, body: Any = None, token: str | None = TOKEN) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await http.request(method, f"/api/v1{path}", json=body, headers=headers)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    env = (await call("GET", "/environments"))["items"][0]["id"]
    e = f"/environments/{env}"
    await call("POST", f"{e}/secret-stores", {"name": "vault", "kind": "builtin"})
    await call("PUT", f"{e}/secret-stores/vault/secrets/robot", {"value": PASSWORD})
    await call("POST", f"{e}/environment-variables", {"schema_name": "u", "type": "text", "value": "robot"})
    await call("POST", f"{e}/environment-variables", {"schema_name": "p", "type": "secret",
                                                      "secret_reference": {"store": "vault", "name": "robot"}})
    cred = await call("POST", f"{e}/credentials", {"name": "c", "username_variable": "u", "password_variable": "p"})
    flow = await call("POST", f"{e}/desktop-flows", {"name": "noop", "command": ["true"]})
    machines: list[tuple[str, Any]] = []
    for i in range(agents):
        reg = await call("POST", f"{e}/machine-registrations", {})
        key, public = new_key_pair()
        made = await call("POST", "/machines/register", {"registration_token": reg["registration_token"],
                                                         "name": f"sim-{i}", "public_key": public}, token=None)
        machines.append((made["machine_token"], key))
    ids = [m["id"] for m in (await call("GET", f"{e}/machines?limit=500"))["items"]]
    group = await call("POST", f"{e}/machine-groups", {"name": "pool", "machines": ids})
    conn = await call("POST", f"{e}/connections", {"name": "pool", "target": {"machine_group": group["id"]},
                                                   "credential": cred["id"]})
    queue = iter(range(jobs))

    async def producer() -> None:
        for _ in queue:
            await call("POST", f"{e}/runs", {"desktop_flow": flow["id"], "connection": conn["id"]})

    await asyncio.gather(*(producer() for _ in range(8)))
    return env, machines


async def post(http: httpx.AsyncClient, path: str, **kw: Any) -> httpx.Response:
    """A POST, sent again when a kept-alive connection was closed under it (as real agents do)."""
    for attempt in range(3):
        try:
            return await http.post(path, **kw)
        except httpx.TransportError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def claims(http: httpx.AsyncClient, machines: list[tuple[str, Any]], jobs: int) -> dict[str, Any]:
    latencies: list[float] = []
    done, lost, last_done = 0, 0, 0.0

    async def agent(token: str, key: Any) -> None:
        nonlocal done, lost, last_done
        headers = {"Authorization": f"Bearer {token}"}
        job: dict[str, Any] | None = None
        while done + lost < jobs or job is not None:
            t0 = time.perf_counter()
            if job is None:
                resp = await post(http, "/api/v1/machines/me/jobs/claim", params={"wait": 2}, headers=headers)
            else:  # one request per job: the result, and the next job in its answer (a resent one is stored once)
                resp = await post(http, f"/api/v1/machines/me/jobs/{job['run_id']}/result", params={"next": 2},
                                  json={"exit_code": 0, "log": "ok\n"}, headers=headers)
                job, done, last_done = None, done + 1, time.perf_counter()
            if resp.status_code == 204:
                if time.perf_counter() - t0 > 1.5:
                    return  # waited and found nothing: the queue is empty
                # Busy at once: a claim whose answer was lost holds a run. Say what runs, as agents do.
                await post(http, "/api/v1/machines/me/heartbeat", json={"running": []}, headers=headers)
                lost += 1
                continue
            resp.raise_for_status()
            latencies.append(time.perf_counter() - t0)
            job = resp.json()
            assert json.loads(open_sealed(key, job["sealed_credential"]))["password"] == PASSWORD

    started = time.perf_counter()
    await asyncio.gather(*(agent(t, k) for t, k in machines))
    elapsed = last_done - started
    latencies.sort()
    return {"claims": done, "lost": lost, "seconds": elapsed, "claims_per_s": done / elapsed,
            "claim_p50_ms": statistics.median(latencies) * 1000,
            "claim_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


async def noop(clients: list[tuple[httpx.AsyncClient, str]], seconds: float, url: str = "/api/v1/me",
               auth: bool = True, method: str = "GET") -> tuple[int, float]:
    """Requests (GET, or a POST without a body) of ``url`` by each (client, machine token) in turn, with the
    token when ``auth``, for ``seconds``: (count, seconds taken)."""
    count = 0
    stop_at = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient, token: str) -> None:
        nonlocal count
        headers = {"Authorization": f"Bearer {token}"} if auth else {}
        while time.perf_counter() < stop_at:
            (await http.request(method, url, headers=headers)).raise_for_status()
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(http, t) for http, t in clients))
    return count, time.perf_counter() - started


async def side_by_side(url: str, machines: list[tuple[str, Any]], seconds: float, bare_url: str) -> dict[str, float]:
    """Requests per second of the bare app's endpoint, credflow's /healthz and the authenticated no-op, at the
    same concurrency (one HTTP client and connection per machine, as real agents have: one client shared by 50
    connections spends more time in its pool than the servers do), in alternating rounds so that a busy moment
    of the machine falls on all three alike."""
    # "write": the smallest write a machine makes, a heartbeat (one UPDATE and its commit): the ceiling of any
    # request that must store something, as every job does.
    targets = {"bare": (bare_url + BARE_PATH, False, "GET"), "healthz": (url + "/healthz", False, "GET"),
               "noop": (url + "/api/v1/me", True, "GET"),
               "write": (url + "/api/v1/machines/me/heartbeat", True, "POST")}
    totals = {name: [0, 0.0] for name in targets}
    rounds = 4
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    clients = [(httpx.AsyncClient(limits=limits, timeout=60), token) for token, _ in machines]
    try:
        for _ in range(rounds):
            for name, (target, auth, method) in targets.items():
                count, took = await noop(clients, seconds / rounds, target, auth, method)
                totals[name][0] += count
                totals[name][1] += took
    finally:
        for http, _ in clients:
            await http.aclose()
    return {f"{name}_per_s": count / took for name, (count, took) in totals.items()}


def idle_agent_rss(url: str, root: Path, seconds: float) -> float:
    """Register and start one real ``credflow agent run``; its resident memory after idling a while."""
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})
    env_id = http.get("/api/v1/environments").json()["items"][0]["id"]
    token = http.post(f"/api/v1/environments/{env_id}/machine-registrations", json={}).json()["registration_token"]
    state = root / "agent-state"
    subprocess.run([CREDFLOW, "agent", "register", "--server", url, "--registration-token", token, "--name",
                    "real-agent", "--state-dir", str(state)], env=clean_env(), check=True, capture_output=True)
    agent = subprocess.Popen([CREDFLOW, "agent", "run", "--state-dir", str(state)], env=clean_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(seconds)
        return rss_mb(agent.pid)
    finally:
        stop(agent)
        http.close()


async def bench(url: str, agents: int, jobs: int, noop_seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=agents + 10, max_keepalive_connections=agents + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        log(f"setting up {agents} machines and queueing {jobs} jobs ...")
        _, machines = await setup(http, agents, jobs)
        log("claiming ...")
        result = await claims(http, machines, jobs)
        log(f"  {result['claims']} jobs in {result['seconds']:.1f} s")
        log(f"bare FastAPI, /healthz and no-op, {noop_seconds:.0f} s each ...")
        with bare_server() as bare_url:
            result.update(await side_by_side(url, machines, noop_seconds, bare_url))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs; ends within a minute")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: SQLite in a temporary data dir)")
    args = parser.parse_args()
    jobs = args.jobs or (600 if args.quick else 5000)
    noop_seconds = 4.0 if args.quick else 15.0
    with tempfile.TemporaryDirectory(prefix="credflow-bench-") as tmp:
        root = Path(tmp)
        env = clean_env(CREDFLOW_BOOTSTRAP_TOKEN=TOKEN,
                        **({"CREDFLOW_DATABASE_URL": args.database_url} if args.database_url else {}))
        with server(root / "data", env) as (url, proc):
            result = asyncio.run(bench(url, args.agents, jobs, noop_seconds))
            log("one real agent, idle ...")
            agent_rss = idle_agent_rss(url, root, 3.0)
            server_rss, server_peak = rss_mb(proc.pid), rss_mb(proc.pid, "VmHWM")
    out = {"jobs_per_s": round(result["claims_per_s"], 1),
           "claims_per_s": round(result["claims_per_s"], 1), "claim_p50_ms": round(result["claim_p50_ms"], 2),
           "claim_p99_ms": round(result["claim_p99_ms"], 2), "noop_per_s": round(result["noop_per_s"], 1),
           "ratio_to_noop": round(result["claims_per_s"] / result["noop_per_s"], 3),
           "bare_per_s": round(result["bare_per_s"], 1), "healthz_per_s": round(result["healthz_per_s"], 1),
           "noop_to_bare": round(result["noop_per_s"] / result["bare_per_s"], 3),
           "write_per_s": round(result["write_per_s"], 1),
           "write_to_noop": round(result["write_per_s"] / result["noop_per_s"], 3),
           "jobs_to_write": round(result["claims_per_s"] / result["write_per_s"], 3),
           "healthz_to_bare": round(result["healthz_per_s"] / result["bare_per_s"], 3),
           "server_rss_mb": server_peak, "server_rss_now_mb": server_rss, "agent_rss_mb": agent_rss,
           "noop_endpoint": "GET /api/v1/me (machine token)",
           "write_endpoint": "POST /api/v1/machines/me/heartbeat (machine token; one UPDATE and its commit)",
           "bare_endpoint": "GET /bare of a bare FastAPI app (async, uvicorn, one worker)",
           "agents": args.agents, "jobs": result["claims"],
           "lost_answers": result["lost"],
           "database": "postgresql" if args.database_url else "sqlite", "quick": args.quick,
           "claim_counts": "one request per job: each job is opened (sealed box) and its result sent with ?next=, "
                           "whose answer is the next job; ratio_to_noop is jobs/s over no-op requests/s"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
