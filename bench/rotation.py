"""Benchmark: rotating one secret shared by 10,000 connections over 1,000 credentials.

The set-up makes the store, the secret, its variables, a machine and a desktop flow over HTTP, then writes the
credentials and connections straight into the database (in bulk; connections as the API makes them: following
their credential, ``secret_version`` null). Each rotation is a real builtin write over HTTP to a real ``credflow
serve`` process (a "secret new version created" event). Measured from the moment the write is sent: the time
until every connection is at the new version (the secret's head has it and no connection is held at another
version or ``secret_unreadable``; a sample of connections is read over the API at the end), and until the next
run claimed by the machine carries it (a second client queues and claims runs in a loop meanwhile). Vault reads
and version checks come from the server's own counters (``GET /rotation``); the server's resident memory from
/proc.

    python bench/rotation.py [--db sqlite|postgresql] [--quick] [--connections N] [--credentials N]
                             [--rotations N]

The full sizes (10,000 connections, 1,000 credentials, 20 rotations) end within a minute on two cores, so
``--quick`` runs them too; ``full_size`` in the JSON says whether the sizes were the issue's.

Progress goes to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _server import database, log, rss_mb
from _server import server as serve
from sqlalchemy import Engine, create_engine, func, insert, literal_column, select

from credflow.crypto.sealing import new_key_pair, open_sealed
from credflow.persistence.tables import Connection, Credential, SecretHead, new_id, utcnow

TOKEN = "cfu_bench-admin-token-0123456789abcdef"
POLL_SECONDS = 0.01  # how often the bench looks (connections, runs): fine enough against a 1 s target


@contextmanager
def server(url: str, workdir: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    env = {**os.environ, "CREDFLOW_DATABASE_URL": url, "CREDFLOW_BOOTSTRAP_TOKEN": TOKEN}
    with serve(workdir / "data", env, workdir / "server.log") as (base, proc), httpx.Client(
            base_url=f"{base}/api/v1", timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield http, proc


def ok(resp: httpx.Response, status: int = 200) -> Any:
    if resp.status_code != status:
        raise RuntimeError(f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text[:300]}")
    return resp.json() if resp.content else None


def setup(http: httpx.Client, engine: Engine, connections: int, credential_count: int) -> dict[str, Any]:
    e = "/environments/default"
    me = ok(http.get("/me"))
    ok(http.post(f"{e}/secret-stores", json={"name": "vault", "kind": "builtin"}), 201)
    ok(http.put(f"{e}/secret-stores/vault/secrets/robot-password", json={"value": "Bench-Pa55word-0"}))
    user_var = ok(http.post(f"{e}/environment-variables", json={"schema_name": "robot_user", "type": "text",
                                                               "value": "robot@corp.example"}), 201)
    pass_var = ok(http.post(f"{e}/environment-variables", json={
        "schema_name": "robot_pass", "type": "secret",
        "secret_reference": {"store": "vault", "name": "robot-password"}}), 201)
    probe_cred = ok(http.post(f"{e}/credentials", json={"name": "probe", "username_variable": "robot_user",
                                                        "password_variable": "robot_pass"}), 201)
    reg = ok(http.post(f"{e}/machine-registrations", json={}), 201)
    key, public = new_key_pair()
    machine = ok(http.post("/machines/register", json={"registration_token": reg["registration_token"],
                                                       "name": "bench-machine", "public_key": public}), 201)
    probe = ok(http.post(f"{e}/connections", json={"name": "probe", "target": {"machine": machine["machine_id"]},
                                                   "credential": probe_cred["id"]}), 201)
    flow = ok(http.post(f"{e}/desktop-flows", json={"name": "login", "command": ["true"]}), 201)
    env_id, now = pass_var["environment"], utcnow()
    creds = [{"id": new_id(), "env_id": env_id, "name": f"bench-{i}", "username_variable_id": user_var["id"],
              "password_variable_id": pass_var["id"], "owner_id": me["id"], "status": "active",
              "created_at": now, "updated_at": now} for i in range(credential_count - 1)]
    conns = [{"id": new_id(), "env_id": env_id, "name": f"conn-{i}", "owner_id": me["id"],
              "machine_id": machine["machine_id"], "credential_id": creds[i % len(creds)]["id"],
              "status": "connected", "secret_version": None, "created_at": now, "updated_at": now}
             for i in range(connections - 1)]
    with engine.begin() as c:
        for start in range(0, len(creds), 20_000):
            c.execute(insert(Credential), creds[start:start + 20_000])
        for start in range(0, len(conns), 20_000):
            c.execute(insert(Connection), conns[start:start + 20_000])
    store = ok(http.get(f"{e}/secret-stores/vault"))
    return {"env_id": env_id, "machine_token": machine["machine_token"], "key": key, "probe": probe["id"],
            "flow": flow["id"], "store_id": store["id"]}


def all_at(engine: Engine, ctx: dict[str, Any], version: str) -> bool:
    """Every connection's next run receives ``version``: the head has it, and no connection is held at another
    version or stopped (the partial indexes the server keeps make this cheap at any size)."""
    with engine.connect() as c:
        head = c.scalar(select(SecretHead.current_version).where(SecretHead.store_id == ctx["store_id"],
                                                                 SecretHead.name == "robot-password"))
        if head != version:
            return False
        held = c.scalar(select(func.count()).select_from(Connection).where(
            Connection.secret_version.is_not(None), Connection.secret_version != version))
        stopped = c.scalar(select(func.count()).select_from(Connection).where(
            Connection.status == literal_column("'secret_unreadable'")))  # literal: the partial index serves it
        return not held and not stopped


def first_run_with(http: httpx.Client, ctx: dict[str, Any], version: str, t0: float, out: list[float]) -> None:
    """Queue and claim runs on the probe connection until one carries ``version``."""
    machine = {"Authorization": f"Bearer {ctx['machine_token']}"}
    while time.perf_counter() - t0 < 30:
        ok(http.post("/environments/default/runs", json={"desktop_flow": ctx["flow"], "connection": ctx["probe"]}),
           201)
        job = ok(http.post("/machines/me/jobs/claim", headers=machine))
        got = json.loads(open_sealed(ctx["key"], job["sealed_credential"]))
        ok(http.post(f"/machines/me/jobs/{job['run_id']}/result", json={"exit_code": 0, "log": ""}, headers=machine))
        if got["version"] == version:
            out.append(time.perf_counter() - t0)
            return
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"no run carried version {version} within 30 s")


def reads(http: httpx.Client) -> tuple[int, int]:
    """The server's vault reads and version checks so far."""
    stores = ok(http.get("/environments/default/rotation"))["stores"]
    return sum(int(s["vault_reads"]) for s in stores), sum(int(s["version_checks"]) for s in stores)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(p / 100 * len(ordered))) - 1)]  # nearest rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--quick", action="store_true",
                        help="end within a minute (the full sizes already do: kept for `make bench`)")
    parser.add_argument("--connections", type=int)
    parser.add_argument("--credentials", type=int)
    parser.add_argument("--rotations", type=int, default=20)
    args = parser.parse_args()
    connections = args.connections or 10_000
    credential_count = args.credentials or max(2, connections // 10)
    workdir = Path(tempfile.mkdtemp(prefix="credflow-bench-rotation-"))
    started = time.perf_counter()
    try:
        with database(args.db, workdir) as url, server(url, workdir) as (http, proc):
            engine = create_engine(url)
            log(f"setting up {connections} connections over {credential_count} credentials on {args.db}")
            ctx = setup(http, engine, connections, credential_count)
            log(f"set up in {time.perf_counter() - started:.1f} s")
            to_conns: list[float] = []
            to_run: list[float] = []
            rss = rss_mb(proc.pid)
            reads_before = reads(http)
            for i in range(args.rotations):
                t0 = time.perf_counter()
                runner = threading.Thread(target=first_run_with, args=(http, ctx, str(i + 2), t0, to_run))
                resp = ok(http.put("/environments/default/secret-stores/vault/secrets/robot-password",
                                   json={"value": f"Bench-Pa55word-{i + 1}"}))
                runner.start()
                while not all_at(engine, ctx, resp["version"]):
                    time.sleep(POLL_SECONDS)
                to_conns.append(time.perf_counter() - t0)
                runner.join()
                rss = max(rss, rss_mb(proc.pid))
                log(f"rotation {i + 1}: connections {to_conns[-1] * 1000:.0f} ms, run {to_run[-1] * 1000:.0f} ms")
            read_count, check_count = (after - before for after, before in zip(reads(http), reads_before,
                                                                                strict=True))
            sample = ok(http.get("/environments/default/connections", params={"limit": 50}))["items"]
            seen = {c["secret_version"] for c in sample}
            if seen != {resp["version"]}:
                raise RuntimeError(f"connections over the API report {seen}, not {resp['version']}")
            engine.dispose()
        result = {
            "benchmark": "rotation", "db": args.db, "quick": args.quick, "connections": connections,
            "credentials": credential_count, "rotations": args.rotations,
            "full_size": connections >= 10_000 and credential_count >= 1_000,
            "event_to_connections_p50_s": round(percentile(to_conns, 50), 4),
            "event_to_connections_p99_s": round(percentile(to_conns, 99), 4),
            "event_to_run_p50_s": round(percentile(to_run, 50), 4),
            "event_to_run_p99_s": round(percentile(to_run, 99), 4),
            "vault_reads_per_rotation": round(read_count / args.rotations, 3),
            "version_checks_per_rotation": round(check_count / args.rotations, 3),
            "server_rss_mb": round(rss, 1), "wall_s": round(time.perf_counter() - started, 1),
            "target_p99_s": 1.0, "target_rss_mb": 250,
        }
        print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
