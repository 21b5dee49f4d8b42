"""Benchmark: the dependencies of one secret environment variable used by 100,000 connections.

The variable is the password of a few credentials whose connections add up to 100,000 (plus unrelated
connections and cloud flows around them). The set-up writes the rows straight into the database; every measured
request goes over HTTP to a real ``credflow serve`` process. Half the requests ask for the first page, half for a
page deep inside the list (a cursor at a random connection). The credential endpoint is measured too.

    python bench/dependencies.py [--db sqlite|postgresql] [--quick] [--connections N] [--requests N]

Progress goes to stderr; the last line on stdout is one JSON object with ``p50_ms`` and ``p99_ms``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _server import database, log, server
from sqlalchemy import insert, select, text

from credflow.persistence.tables import CloudFlow, Connection, ConnectionReference, DesktopFlow, User, new_id, utcnow
from credflow.services.access.users import bootstrap
from credflow.services.catalog import credentials, variables
from credflow.services.core import Actor, Core, build_core
from credflow.services.secrets import secret_stores
from credflow.settings import Settings

TOKEN = "cfu_bench-admin-token-0123456789abcdef"
TARGET_P99_MS = 100.0
UNRELATED_CONNECTIONS = 20_000


def populate(core: Core, connections: int, credential_count: int) -> dict[str, Any]:
    """The secret variable, its credentials, their connections and some cloud flows; plus unrelated rows."""
    with core.db.read() as s:
        admin = s.scalar(select(User).where(User.organization_admin))
        assert admin is not None
        actor = Actor(kind="user", id=admin.id, org_id=admin.org_id, name=admin.name)
        owner = admin.id
    env = "default"
    secret_stores.create_store(core, actor, env, "vault", "builtin", None, {})
    secret_stores.put_secret(core, actor, env, "vault", "robot-password", "Bench-Pa55word!")
    secret_stores.put_secret(core, actor, env, "vault", "other-password", "Other-Pa55word!")
    variables.create_variable(core, actor, env, "robot_user", None, "text", "robot@corp.example", None)
    variables.create_variable(core, actor, env, "robot_pass", None, "secret", None,
                              {"store": "vault", "name": "robot-password"})
    variables.create_variable(core, actor, env, "other_pass", None, "secret", None,
                              {"store": "vault", "name": "other-password"})
    creds = [credentials.create_credential(core, actor, env, f"Robot login {i}", None, "robot_user",
                                           "robot_pass")["id"] for i in range(credential_count)]
    other = credentials.create_credential(core, actor, env, "Other login", None, "robot_user", "other_pass")["id"]
    env_id = credentials.get_credential(core, actor, env, creds[0])["environment"]
    now = utcnow()

    def rows(credential: str, count: int, prefix: str) -> list[dict[str, Any]]:
        return [{"id": new_id(), "env_id": env_id, "name": f"{prefix} {i}", "owner_id": owner,
                 "credential_id": credential, "status": "connected", "secret_version": "1", "created_at": now,
                 "updated_at": now}  # as the API makes them: connected, on the secret's current version
                for i in range(count)]

    with core.db.transaction() as s:
        per = connections // credential_count
        for i, cred in enumerate(creds):
            s.execute(insert(Connection), rows(cred, per + (connections % credential_count if i == 0 else 0),
                                               f"conn {i}"))
        s.execute(insert(Connection), rows(other, UNRELATED_CONNECTIONS, "unrelated"))
        flow = DesktopFlow(env_id=env_id, name="Invoice bot", command=["python", "-c", "print(1)"])
        s.add(flow)
        s.flush()
        used = s.execute(select(Connection.id, Connection.credential_id).where(Connection.env_id == env_id)
                         .order_by(Connection.id).limit(400)).all()
        for i, conn in enumerate(used[::20]):
            ref = ConnectionReference(env_id=env_id, name=f"ref {i}", connection_id=conn.id)
            s.add(ref)
            s.flush()
            s.add(CloudFlow(env_id=env_id, name=f"flow {i}", trigger={"type": "manual"}, owner_id=owner,
                            actions=[{"type": "run_desktop_flow", "desktop_flow": flow.id,
                                      "connection_reference": ref.id}]))
        cursors = [f"{r.credential_id}.{r.id}" for r in s.execute(
            select(Connection.id, Connection.credential_id).where(Connection.credential_id.in_(creds))).all()]
    if not core.db.is_sqlite:
        with core.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE connections"))  # what autovacuum does after a bulk load
    return {"env": env_id, "credential": creds[0], "cursors": random.Random(7).sample(cursors, 2000)}


def measure(http: httpx.Client, path: str, params: list[dict[str, Any]], expect: int) -> list[float]:
    out = []
    for p in params:
        start = time.perf_counter()
        resp = http.get(path, params=p)
        out.append((time.perf_counter() - start) * 1000)
        if resp.status_code != 200 or resp.json()["counts"]["connections"] != expect:
            raise RuntimeError(f"unexpected answer {resp.status_code}: {resp.text[:200]}")
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="fewer requests: done within a minute")
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--credentials", type=int, default=4, help="credentials sharing the secret variable")
    args = parser.parse_args()
    requests = args.requests or (300 if args.quick else 2000)
    workdir = Path(tempfile.mkdtemp(prefix="credflow-bench-"))
    try:
        with database(args.db, workdir) as url:
            started = time.monotonic()
            settings = Settings(data_dir=workdir / "data", database_url=url, bootstrap_token=TOKEN,
                                run_workers=False)
            core = build_core(settings)
            bootstrap(core, TOKEN)
            made = populate(core, args.connections, args.credentials)
            core.db.engine.dispose()
            setup_s = round(time.monotonic() - started, 1)
            log(f"{args.db}: {args.connections} connections (+{UNRELATED_CONNECTIONS} unrelated) in {setup_s}s")
            env = {**os.environ, "CREDFLOW_DATABASE_URL": url, "CREDFLOW_BOOTSTRAP_TOKEN": TOKEN}
            with server(workdir / "data", env) as (base, _), httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
                var = f"/api/v1/environments/{made['env']}/environment-variables/robot_pass/dependencies"
                cred = f"/api/v1/environments/{made['env']}/credentials/{made['credential']}/dependencies"
                deep = [{"cursor": c} for c in made["cursors"]]
                measure(http, var, [{}] * 20 + deep[:20], args.connections)  # warm-up
                first = measure(http, var, [{}] * (requests // 2), args.connections)
                paged = measure(http, var, (deep * (1 + requests // len(deep)))[:requests // 2], args.connections)
                per_cred = args.connections // args.credentials + args.connections % args.credentials
                credential = measure(http, cred, [{}] * (requests // 4), per_cred)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    both = first + paged
    result = {"bench": "dependencies", "db": args.db, "connections": args.connections,
              "unrelated_connections": UNRELATED_CONNECTIONS, "credentials": args.credentials, "requests": len(both),
              "p50_ms": pct(both, 0.5), "p99_ms": pct(both, 0.99), "mean_ms": round(statistics.fmean(both), 2),
              "first_page_p99_ms": pct(first, 0.99), "deep_page_p99_ms": pct(paged, 0.99),
              "credential_p50_ms": pct(credential, 0.5), "credential_p99_ms": pct(credential, 0.99),
              "target_p99_ms": TARGET_P99_MS, "met": pct(both, 0.99) < TARGET_P99_MS, "setup_s": setup_s}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
