"""What one job costs the server, in process: SQL statements and milliseconds per job beside an authenticated
no-op request, on SQLite or PostgreSQL.

    python bench/job_cost.py [--db sqlite|postgresql] [--jobs N] [--profile]

One machine claims, then reports each job with ``POST /machines/me/jobs/{run_id}/result?next=0`` (one request per
job: its answer is the next job), through the real app in this process (FastAPI's test client, no network). The
no-op is ``GET /api/v1/me`` with the same machine token, measured in the same run. Statements are counted with a
SQLAlchemy ``before_cursor_execute`` listener (BEGIN and COMMIT the driver sends by itself are not counted).
``service_ms_per_job`` is the time spent in the service calls of a job (``dispatch.report_and_claim``, or
``report`` and ``claim``, in the server's threads); ``--profile`` prints their cProfile (cumulative time, the top
functions) to stderr. Progress goes to
stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _server import database, log
from fastapi.testclient import TestClient
from sqlalchemy import event

from credflow.api.app import create_app
from credflow.audit import chain
from credflow.crypto.sealing import new_key_pair, open_sealed
from credflow.services.access.users import bootstrap
from credflow.services.automation import dispatch
from credflow.services.core import build_core
from credflow.settings import Settings

TOKEN = "cfu_bench-admin-token-0123456789"
PASSWORD = "Bench-Pa55word!"


def setup(http: TestClient, jobs: int) -> tuple[dict[str, str], Any, list[str]]:
    admin = {"Authorization": f"Bearer {TOKEN}"}

    def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = admin) -> Any:
        resp = http.request(method, f"/api/v1{path}", json=body, headers=headers)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    e = f"/environments/{call('GET', '/environments')['items'][0]['id']}"
    call("POST", f"{e}/secret-stores", {"name": "vault", "kind": "builtin"})
    call("PUT", f"{e}/secret-stores/vault/secrets/robot", {"value": PASSWORD})
    call("POST", f"{e}/environment-variables", {"schema_name": "u", "type": "text", "value": "robot"})
    call("POST", f"{e}/environment-variables", {"schema_name": "p", "type": "secret",
                                                "secret_reference": {"store": "vault", "name": "robot"}})
    cred = call("POST", f"{e}/credentials", {"name": "c", "username_variable": "u", "password_variable": "p"})
    flow = call("POST", f"{e}/desktop-flows", {"name": "noop", "command": ["true"]})
    reg = call("POST", f"{e}/machine-registrations", {})
    key, public = new_key_pair()
    made = call("POST", "/machines/register", {"registration_token": reg["registration_token"], "name": "m",
                                               "public_key": public}, headers=None)
    group = call("POST", f"{e}/machine-groups", {"name": "pool", "machines": [made["machine_id"]]})
    conn = call("POST", f"{e}/connections", {"name": "pool", "target": {"machine_group": group["id"]},
                                             "credential": cred["id"]})
    runs = [call("POST", f"{e}/runs", {"desktop_flow": flow["id"], "connection": conn["id"]})["id"]
            for _ in range(jobs)]
    return {"Authorization": f"Bearer {made['machine_token']}"}, key, runs


def timed(fn: Callable[..., Any], spent: list[float], profile: cProfile.Profile | None) -> Callable[..., Any]:
    """``fn``, its time added to ``spent[0]`` (and profiled with ``profile``)."""
    def call(*args: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        if profile:
            profile.enable()
        try:
            return fn(*args, **kw)
        finally:
            if profile:
                profile.disable()
            spent[0] += time.perf_counter() - started
    return call


PARTS = (("sqlite3 driver", ("sqlite3.", "'_sqlite3")), ("psycopg driver", ("psycopg",)),
         ("sealing (PyNaCl)", ("_sodium", "/nacl/")), ("audit hash (sha256)", ("sha256", "hexdigest")),
         ("SQLAlchemy", ("/sqlalchemy/",)), ("credflow", ("/credflow/",)))


def shares(stats: pstats.Stats) -> dict[str, float]:
    """The profile's own time by part (driver, ORM, crypto, credflow's code, the rest), as fractions."""
    spent: dict[str, float] = {}
    for (file, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{file}:{name}"
        part = next((label for label, marks in PARTS if any(m in where for m in marks)), "other")
        spent[part] = spent.get(part, 0.0) + row[2]
    total = sum(spent.values()) or 1.0
    return {part: round(t / total, 3) for part, t in sorted(spent.items(), key=lambda kv: -kv[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print the job loop's cProfile to stderr")
    parser.add_argument("--sort", default="cumulative", help="the profile's order (cumulative, tottime)")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of the last job to stderr")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="credflow-bench-") as tmp, database(args.db, Path(tmp)) as url:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=url, bootstrap_token=TOKEN,
                            run_workers=False)
        core = build_core(settings)
        bootstrap(core, TOKEN)
        statements, sent = [0], []

        def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
            statements[0] += 1
            sent.append(" ".join(sql.split())[:220])

        event.listen(core.db.engine, "before_cursor_execute", count)
        try:
            with TestClient(create_app(settings, core)) as http:
                log(f"queueing {args.jobs} jobs ...")
                headers, key, _ = setup(http, args.jobs + 1)
                resp = http.post("/api/v1/machines/me/jobs/claim", headers=headers)
                job = resp.json()
                for _ in range(20):  # warm up: the no-op and the job loop
                    http.get("/api/v1/me", headers=headers).raise_for_status()
                log("the job loop ...")
                profile, spent = cProfile.Profile() if args.profile else None, [0.0]
                for name in ("report_and_claim", "report", "redeliver", "claim"):
                    if hasattr(dispatch, name):
                        setattr(dispatch, name, timed(getattr(dispatch, name), spent, profile))
                before, started, done = statements[0], time.perf_counter(), 0
                while done < args.jobs:
                    sent.clear()
                    resp = http.post(f"/api/v1/machines/me/jobs/{job['run_id']}/result", params={"next": 0},
                                     json={"exit_code": 0, "log": "ok\n"}, headers=headers)
                    resp.raise_for_status()
                    done += 1
                    if resp.status_code == 204:
                        break
                    job = resp.json()
                    assert json.loads(open_sealed(key, job["sealed_credential"]))["password"] == PASSWORD
                job_s, job_statements = time.perf_counter() - started, statements[0] - before
                if args.show_sql:
                    log("\n".join(sent))
                log("the no-op ...")
                before, started = statements[0], time.perf_counter()
                for _ in range(args.jobs):
                    http.get("/api/v1/me", headers=headers).raise_for_status()
                noop_s, noop_statements = time.perf_counter() - started, statements[0] - before
            with core.db.read() as s:
                chain_ok = not chain.verify(s)  # every record of the loop chained in order
        finally:
            core.db.engine.dispose()
    if profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(45)
        print(out.getvalue(), file=sys.stderr)
        log(json.dumps({"profile_share_by_part": shares(pstats.Stats(profile))}))
    print(json.dumps({"database": args.db, "jobs": done,
                      "statements_per_job": round(job_statements / done, 2),
                      "ms_per_job": round(job_s / done * 1000, 2),
                      "service_ms_per_job": round(spent[0] / done * 1000, 2),
                      "statements_per_noop": round(noop_statements / args.jobs, 2),
                      "ms_per_noop": round(noop_s / args.jobs * 1000, 2),
                      "ratio_to_noop": round(noop_s / args.jobs / (job_s / done), 3),
                      "audit_chain_ok": chain_ok, "profiled": args.profile}))


if __name__ == "__main__":
    main()
