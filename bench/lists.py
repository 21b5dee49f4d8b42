"""Benchmark: API lists paged in the database, on a runs table of 10,000 rows and then of 1,000,000.

The set-up makes a machine, two desktop flows, a credential and a few connections over HTTP, then writes the
runs and 100,000 connections straight into the database (ids made as credflow makes them, so they sort by queue
time). The server is one real ``credflow serve`` process; every figure is measured through real HTTP:
``GET .../runs`` and ``GET .../connections``, 50 rows a page, for the first page, a page from the middle (its
cursor taken from the middle of the table), a filtered page (runs: status, connection and since; connections:
status and credential) and, for runs, the first page of a basic user who started one run in 5,000. The runs
table is measured at 10,000 rows, then grown to 1,000,000 and measured again in the same run, so
``p99_ratio_1m_to_10k`` compares the two side by side (the worst of the kinds of page).
The server's resident memory is its peak (VmHWM) from /proc.

    python bench/lists.py [--postgres] [--quick] [--requests N]

``--quick`` uses 1,000 and 100,000 runs and 10,000 connections and fewer requests (a check that ends in well
under a minute on SQLite); ``full_size`` in the JSON says whether the sizes were the full ones.

Progress goes to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _server import database, log, rss_mb
from _server import server as serve
from sqlalchemy import Engine, create_engine, insert, text

from credflow.crypto.sealing import new_key_pair
from credflow.persistence.db import migrate
from credflow.persistence.tables import Connection, Run, new_id, utcnow

TOKEN = "cfu_bench-admin-token-0123456789abcdef"
E = "/environments/default"
PAGE = 50
CHUNK = 5_000
STATUSES = ["succeeded"] * 17 + ["failed"] * 2 + ["cancelled"]
MAKER_EVERY = 5_000  # one run in this many was started by a basic user (an environment maker)


@contextmanager
def server(url: str, workdir: Path) -> Iterator[tuple[httpx.Client, int]]:
    engine = create_engine(url)
    migrate(engine)  # before the server starts: it finds the schema at head and answers sooner
    engine.dispose()
    env = {**os.environ, "CREDFLOW_DATABASE_URL": url, "CREDFLOW_BOOTSTRAP_TOKEN": TOKEN}
    with serve(workdir / "data", env, workdir / "server.log", start_seconds=600) as (base, proc), httpx.Client(
            base_url=f"{base}/api/v1", timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield http, proc.pid


def ok(resp: httpx.Response, status: int = 200) -> Any:
    if resp.status_code != status:
        raise RuntimeError(f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text[:300]}")
    return resp.json() if resp.content else None


def setup(http: httpx.Client) -> dict[str, Any]:
    me = ok(http.get("/me"))
    ok(http.post(f"{E}/secret-stores", json={"name": "vault", "kind": "builtin"}), 201)
    ok(http.put(f"{E}/secret-stores/vault/secrets/robot-password", json={"value": "Bench-Pa55word-0"}))
    ok(http.post(f"{E}/environment-variables", json={"schema_name": "robot_user", "type": "text",
                                                     "value": "robot@corp.example"}), 201)
    ok(http.post(f"{E}/environment-variables", json={
        "schema_name": "robot_pass", "type": "secret",
        "secret_reference": {"store": "vault", "name": "robot-password"}}), 201)
    cred = ok(http.post(f"{E}/credentials", json={"name": "robot", "username_variable": "robot_user",
                                                  "password_variable": "robot_pass"}), 201)
    reg = ok(http.post(f"{E}/machine-registrations", json={}), 201)
    _, public = new_key_pair()
    machine = ok(http.post("/machines/register", json={"registration_token": reg["registration_token"],
                                                       "name": "bench-machine", "public_key": public}), 201)
    flows = [ok(http.post(f"{E}/desktop-flows", json={"name": f"flow-{i}", "command": ["true"]}), 201)["id"]
             for i in range(2)]
    conns = [ok(http.post(f"{E}/connections", json={"name": f"robot-{i}", "target": {"machine": machine["machine_id"]},
                                                    "credential": cred["id"]}), 201)["id"] for i in range(8)]
    maker = ok(http.post("/users", json={"name": "maker", "email": "maker@example.com",
                                         "environment_roles": {cred["environment"]: "environment_maker"}}), 201)
    return {"env_id": cred["environment"], "owner": me["id"], "machine": machine["machine_id"], "flows": flows,
            "connections": conns, "credential": cred["id"], "maker": maker["id"], "maker_token": maker["token"]}


def time_id(at: datetime) -> str:
    """An id as ``new_id`` makes it at ``at``: its time in nanoseconds, then random."""
    return f"{int(at.timestamp() * 1_000_000) * 1000:016x}{os.urandom(8).hex()}"


def insert_runs(engine: Engine, ctx: dict[str, Any], count: int, end: datetime) -> list[tuple[str, datetime]]:
    """``count`` finished runs, one a second up to ``end``; returns their (id, queued_at), oldest first."""
    rng = random.Random(count)
    start = end - timedelta(seconds=count)
    made: list[tuple[str, datetime]] = []
    with engine.begin() as c:
        for first in range(0, count, CHUNK):
            rows = []
            for i in range(first, min(count, first + CHUNK)):
                at = start + timedelta(seconds=i)
                rid = time_id(at)
                made.append((rid, at))
                rows.append({"id": rid, "env_id": ctx["env_id"], "desktop_flow_id": ctx["flows"][i % 2],
                             "connection_id": ctx["connections"][i % len(ctx["connections"])],
                             "status": rng.choice(STATUSES), "machine_id": ctx["machine"], "exit_code": 0,
                             "secret_version": "1", "log": "done\n", "timeout_seconds": 3600,
                             "created_by": ctx["maker"] if i % MAKER_EVERY == 0 else ctx["owner"],
                             "queued_at": at, "started_at": at,
                             "finished_at": at + timedelta(seconds=1)})
            c.execute(insert(Run), rows)
    return made


def insert_connections(engine: Engine, ctx: dict[str, Any], count: int) -> list[str]:
    now = utcnow()
    ids = []
    with engine.begin() as c:
        for first in range(0, count, CHUNK):
            rows = []
            for i in range(first, min(count, first + CHUNK)):
                cid = new_id()
                ids.append(cid)
                rows.append({"id": cid, "env_id": ctx["env_id"], "name": f"bulk-{i}", "owner_id": ctx["owner"],
                             "machine_id": ctx["machine"], "credential_id": ctx["credential"] if i % 10 == 0 else None,
                             "status": "access_revoked" if i % 50 == 0 else "connected", "secret_version": "1",
                             "created_at": now, "updated_at": now})
            c.execute(insert(Connection), rows)
    return ids


def analyze(engine: Engine) -> None:
    """PostgreSQL's planner statistics for the tables just written in bulk, as autovacuum keeps them for a table
    that grew over months (it would run on its own within a minute or so; the measurement starts at once)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as c:
            c.execute(text("ANALYZE runs"))
            c.execute(text("ANALYZE connections"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(p / 100 * len(ordered))) - 1)]  # nearest rank


def measure(http: httpx.Client, path: str, params: dict[str, Any], requests: int,
            headers: dict[str, str] | None = None) -> dict[str, float]:
    """p50 and p99 in milliseconds of ``requests`` GETs of one page (after two to warm up), as the admin unless
    ``headers`` say otherwise."""
    times = []
    for i in range(requests + 2):
        t0 = time.perf_counter()
        page = ok(http.get(path, params={"limit": PAGE, **params}, headers=headers))
        took = time.perf_counter() - t0
        if not page["items"]:
            raise RuntimeError(f"{path} {params}: an empty page measures nothing")
        if i >= 2:
            times.append(took * 1000)
    return {"p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2)}


def runs_pages(http: httpx.Client, ctx: dict[str, Any], made: list[tuple[str, datetime]], requests: int
               ) -> dict[str, dict[str, float]]:
    mid_id, mid_at = made[len(made) // 2]
    kinds: dict[str, Callable[[], dict[str, float]]] = {
        "first": lambda: measure(http, f"{E}/runs", {}, requests),
        "middle": lambda: measure(http, f"{E}/runs", {"cursor": mid_id}, requests),
        "filtered": lambda: measure(http, f"{E}/runs", {"status": "failed", "connection": ctx["connections"][3],
                                                        "since": mid_at.isoformat()}, requests),
        # A basic user sees only the runs they started (one in MAKER_EVERY): their first page.
        "basic_user": lambda: measure(http, f"{E}/runs", {}, requests,
                                      headers={"Authorization": f"Bearer {ctx['maker_token']}"}),
    }
    return {k: f() for k, f in kinds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (CREDFLOW_TEST_POSTGRES) for SQLite")
    parser.add_argument("--quick", action="store_true", help="smaller tables and fewer requests: a fast check")
    parser.add_argument("--requests", type=int, help="requests per kind of page (default 200; --quick 40)")
    args = parser.parse_args()
    db = "postgresql" if args.postgres else "sqlite"
    small, large, conn_count = (1_000, 100_000, 10_000) if args.quick else (10_000, 1_000_000, 100_000)
    requests = args.requests or (40 if args.quick else 200)
    workdir = Path(tempfile.mkdtemp(prefix="credflow-bench-lists-"))
    started = time.perf_counter()
    try:
        with database(db, workdir) as url, server(url, workdir) as (http, pid):
            engine = create_engine(url)
            ctx = setup(http)
            end = datetime.now(UTC) - timedelta(days=1)
            log(f"{db}: writing {small} runs and {conn_count} connections")
            made = insert_runs(engine, ctx, small, end)
            conn_ids = insert_connections(engine, ctx, conn_count)
            analyze(engine)
            at_small = runs_pages(http, ctx, made, requests)
            log(f"runs {small}: {at_small}")
            log(f"growing the runs to {large}")
            t0 = time.perf_counter()
            made = insert_runs(engine, ctx, large - small, end - timedelta(seconds=small)) + made
            log(f"written in {time.perf_counter() - t0:.0f} s")
            analyze(engine)
            at_large = runs_pages(http, ctx, made, requests)
            log(f"runs {large}: {at_large}")
            conns = {
                "first": measure(http, f"{E}/connections", {}, requests),
                "middle": measure(http, f"{E}/connections", {"cursor": conn_ids[len(conn_ids) // 2]}, requests),
                "filtered": measure(http, f"{E}/connections", {"status": "access_revoked",
                                                               "credential": ctx["credential"]}, requests),
            }
            log(f"connections {conn_count}: {conns}")
            rss = rss_mb(pid, "VmHWM")
            engine.dispose()
        ratios = {k: round(at_large[k]["p99_ms"] / at_small[k]["p99_ms"], 2) for k in at_small}
        result = {
            "benchmark": "lists", "db": db, "quick": args.quick, "full_size": not args.quick,
            "runs_small": small, "runs_large": large, "connections": conn_count, "page": PAGE,
            "requests_per_kind": requests, "runs_small_ms": at_small, "runs_large_ms": at_large,
            "connections_ms": conns, "p99_ratio_by_page": ratios,
            "p99_ratio_1m_to_10k": max(ratios.values()), "server_rss_mb": rss,
            "target_p99_ratio": 2, "target_rss_mb": 250, "wall_s": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
