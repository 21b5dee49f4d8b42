"""Real server processes: an accepted event survives a kill -9, and two servers on one PostgreSQL database
share the rotation work (FOR UPDATE SKIP LOCKED) without doing any of it twice."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Api, pg_schema_url
from tests.rotation.conftest import audit, connect, register_machine, wait_for
from tests.rotation.servers import server


def _setup(admin: Api, credentials: int = 1, per_credential: int = 2) -> list[str]:
    admin.store("vault")
    admin.secret("vault", "robot-password", "one")
    admin.text_var("robot_user", "robot")
    admin.secret_var("robot_pass", "vault", "robot-password")
    machine = register_machine(admin)
    conns = []
    for c in range(credentials):
        cred = admin.credential(f"cred-{c}", "robot_user", "robot_pass")
        conns += [connect(admin, machine, cred["id"], f"c{c}-{i}")["id"] for i in range(per_credential)]
    return conns


def _versions(admin: Api) -> set[str]:
    return {c["secret_version"] for c in admin.ok(admin.get(admin.e("/connections"), params={"limit": 500}))["items"]}


def test_an_event_accepted_before_a_kill_9_is_applied_after_restart(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "server"
    with server(data, database_url, CREDFLOW_RUN_WORKERS="false") as (admin, proc):
        _setup(admin)
        assert admin.secret("vault", "robot-password", "two")["version"] == "2"  # answered: the event is stored
        assert admin.ok(admin.get(admin.e("/rotation")))["pending_events"] >= 1
        assert _versions(admin) == {"1"}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with server(data, database_url) as (admin, _):
        wait_for(lambda: _versions(admin) == {"2"}, timeout=10)
        assert admin.ok(admin.get(admin.e("/rotation")))["pending_events"] == 0


@pytest.mark.postgres
def test_two_server_processes_on_one_postgresql_share_the_work(tmp_path: Path, pg_available: bool) -> None:
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = pg_schema_url()
    url = next(schema)
    try:
        data = tmp_path / "shared"  # one data directory: both processes use its master key file
        with server(data, url) as (a, _), server(data, url) as (b, _):
            conns = _setup(a, credentials=2, per_credential=5)
            reads_before = _reads(a) + _reads(b)
            for i in range(4):  # one at a time, alternating servers: each reaches every connection
                version = (a, b)[i % 2].secret("vault", "robot-password", f"seq-{i}")["version"]
                reader = (b, a)[i % 2]
                wait_for(lambda v=version, r=reader: _versions(r) == {v}, timeout=5)  # type: ignore[misc]
            writers = [threading.Thread(target=(a, b)[i % 2].secret, args=("vault", "robot-password", f"b-{i}"))
                       for i in range(12)]
            for t in writers:
                t.start()
            for t in writers:
                t.join()
            last = str(1 + 4 + 12)
            wait_for(lambda: _versions(a) == {last} and _versions(b) == {last}, timeout=10)
            wait_for(lambda: a.ok(a.get(a.e("/rotation")))["pending_events"] == 0, timeout=10)
            changes = audit(a, "secret.version_changed")
            moved_to = [r["detail"]["to_version"] for r in changes]
            assert len(moved_to) == len(set(moved_to))  # no version applied twice
            assert moved_to[-1] == last and len(conns) == 10
            assert _reads(a) + _reads(b) == reads_before  # each write cached its version: none is read back
            workers = {r["detail"]["worker"] for r in changes}
            assert len(workers) == 2, workers  # both processes applied events
    finally:
        schema.close()


def _reads(api: Api) -> int:
    status: dict[str, Any] = api.ok(api.get(api.e("/rotation")))
    return sum(int(s["vault_reads"]) for s in status["stores"])
