"""The vault (a real OpenBao) away for longer than the stale bound (``CREDFLOW_STALE_IF_ERROR_SECONDS``): runs get
the last good version while the bound lasts, then are refused with the reason (``secret_unreadable``, nothing
delivered), and once the vault is back the connection turns ``connected`` and runs get the credential again,
with no restart of credflow."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import Api
from tests.faults.conftest import serve, wait_for
from tests.faults.openbao import RaftBao
from tests.machines.conftest import Machine, connection, desktop_flow, queue, register, run

STALE_BOUND = 2


def _status(admin: Api, conn: str) -> str:
    return str(admin.ok(admin.get(admin.e(f"/connections/{conn}")))["status"])


def _deliver(admin: Api, machine: Machine, flow: str, conn: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Queue a run and claim it: the run afterwards, and what the machine received (None: nothing)."""
    queued = queue(admin, flow, conn)
    job = machine.job()
    got = machine.open(job) if job is not None else None
    if job is not None:
        assert machine.finish(job["run_id"]).status_code == 200
    return run(admin, queued["id"]), got


def test_runs_are_refused_past_the_stale_bound_and_recover_when_the_vault_returns(tmp_path: Path) -> None:
    bao = RaftBao(tmp_path / "bao")
    bao.start()
    try:
        bao.root().secrets.kv.v2.create_or_update_secret(path="robots/r1", secret={"value": "Bao-Pa55word-1"})
        with serve(tmp_path / "data", tmp_path / "server.log",
                   CREDFLOW_STALE_IF_ERROR_SECONDS=str(STALE_BOUND)) as (admin, proc):
            admin.store("bao", kind="hashicorp-vault", vault_url=bao.address, config={
                "address": bao.address, "token": bao.root_token, "poll_interval_seconds": 1})
            admin.text_var("robot_user", "robot@corp.example")
            admin.secret_var("robot_pass", "bao", "robots/r1")
            cred = admin.credential("Bao login", "robot_user", "robot_pass")
            machine = register(admin, "pc-bao")
            flow = desktop_flow(admin)["id"]
            conn = connection(admin, "bao", {"machine": machine.id}, credential=cred["id"])["id"]
            done, got = _deliver(admin, machine, flow, conn)
            assert got is not None and got["password"] == "Bao-Pa55word-1" and done["status"] == "succeeded"

            bao.kill()
            down = time.monotonic()
            # Within the bound the last good version keeps serving.
            done, got = _deliver(admin, machine, flow, conn)
            assert got is not None and got["password"] == "Bao-Pa55word-1", done
            # Past it the connection turns secret_unreadable and runs are refused with that reason.
            wait_for(lambda: _status(admin, conn) == "secret_unreadable", STALE_BOUND + 5, "the stale bound")
            refused_after = time.monotonic() - down
            done, got = _deliver(admin, machine, flow, conn)
            assert got is None and done["status"] == "failed"
            assert "secret_unreadable" in done["log"] and "the credential was not delivered" in done["log"]
            view = admin.ok(admin.get(admin.e(f"/connections/{conn}")))
            assert view["secret_stale_since"] and view["secret_error"]

            bao.start()
            up = time.monotonic()
            wait_for(lambda: _status(admin, conn) == "connected", 10, "the connection recovers")
            recovered = time.monotonic() - up
            done, got = _deliver(admin, machine, flow, conn)
            assert got is not None and got["password"] == "Bao-Pa55word-1" and done["status"] == "succeeded"
            bao.root().secrets.kv.v2.create_or_update_secret(path="robots/r1", secret={"value": "Bao-Pa55word-2"})
            wait_for(lambda: admin.ok(admin.get(admin.e(f"/connections/{conn}")))["secret_version"] == "2", 10,
                     "a new version after the outage")
            done, got = _deliver(admin, machine, flow, conn)
            assert got is not None and got["password"] == "Bao-Pa55word-2"
            assert proc.poll() is None
            print(f"\nvault outage: runs refused {refused_after:.2f} s after the vault went away (stale bound "
                  f"{STALE_BOUND} s, polled every 1 s); the connection was connected again {recovered:.2f} s after "
                  "the vault was back")
    finally:
        bao.stop()
