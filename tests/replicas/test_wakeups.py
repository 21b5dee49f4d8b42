"""Two ``credflow serve`` processes (replicas) on one PostgreSQL database wake each other: a run queued on A is
claimed by a machine waiting on B long before its wait would end (and before the 30 s safety sweep), a secret
change posted to A moves the connections B's rotation worker follows, and real agents served by B run a queue
with one request per job (the result and the next claim together), each result stored once."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Api, new_machine, pg_schema_url
from tests.e2e.server import CREDFLOW, clean_env, running_server, stop

pytestmark = pytest.mark.postgres

TOKEN = "cfu_replicas-admin-token-0123456789abcdefgh"
PASSWORD = "Replica-Pa55word!"
WAIT = 60.0  # the long poll of the waiting machine
LISTENING = "wake-ups: listening on PostgreSQL channel"


@dataclass
class Pair:
    a: Api  # the administrator on replica A
    b: Api  # on replica B
    logs: Path


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


@pytest.fixture
def pair(pg_available: bool, tmp_path: Path) -> Iterator[Pair]:
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    urls = pg_schema_url()
    env = {"CREDFLOW_DATABASE_URL": next(urls), "CREDFLOW_BOOTSTRAP_TOKEN": TOKEN,
           "CREDFLOW_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    try:
        # A runs no background workers: what B's worker does was woken from A.
        with running_server(tmp_path / "a", {**env, "CREDFLOW_RUN_WORKERS": "false"}, clean=True,
                            log=tmp_path / "a.log") as (a, _), \
                running_server(tmp_path / "b", env, clean=True, log=tmp_path / "b.log") as (b, _), \
                httpx.Client(base_url=a, timeout=WAIT + 30) as ha, httpx.Client(base_url=b, timeout=WAIT + 30) as hb:
            for log in ("a.log", "b.log"):  # both hear the other (else they would only poll)
                _wait_for(lambda log=log: LISTENING in (tmp_path / log).read_text(), 30, f"{log} listening")
            api_a = Api(ha, TOKEN)
            api_a.env = api_a.ok(api_a.get("/environments"))["items"][0]["id"]
            yield Pair(api_a, Api(hb, TOKEN, api_a.env), tmp_path)
    finally:
        next(urls, None)


def _credential(api: Api) -> dict[str, Any]:
    api.store("vault")
    api.secret("vault", "robot", PASSWORD)
    api.text_var("robot_user", "robot@corp.example")
    api.secret_var("robot_pass", "vault", "robot")
    return api.credential("Robot", "robot_user", "robot_pass")


def test_a_run_queued_on_a_wakes_a_claim_waiting_on_b(pair: Pair) -> None:
    cred = _credential(pair.a)
    machine_a, machine_id, _ = new_machine(pair.a, "pc-1")
    on_b = Api(pair.b.http, machine_a.token, pair.a.env)  # the machine's agent talks to B
    flow = pair.a.ok(pair.a.post(pair.a.e("/desktop-flows"), {"name": "f", "command": ["robot"]}), 201)
    conn = pair.a.ok(pair.a.post(pair.a.e("/connections"), {"name": "c", "target": {"machine": machine_id},
                                                            "credential": cred["id"]}), 201)
    got: dict[str, Any] = {}

    def claim() -> None:
        got["resp"] = on_b.post("/machines/me/jobs/claim", params={"wait": WAIT})
        got["at"] = time.monotonic()

    waiter = threading.Thread(target=claim)
    waiter.start()
    # The claim is waiting on B once B has marked the machine seen (it looks when it begins).
    _wait_for(lambda: pair.a.ok(pair.a.get(pair.a.e(f"/machines/{machine_id}")))["last_seen"], 10, "claim begun")
    time.sleep(0.5)
    queued_at = time.monotonic()
    queued = pair.a.ok(pair.a.post(pair.a.e("/runs"), {"desktop_flow": flow["id"], "connection": conn["id"]}), 201)
    waiter.join(WAIT + 10)
    assert got["resp"].status_code == 200, got["resp"].text
    assert got["resp"].json()["run_id"] == queued["id"]
    # Woken by A's NOTIFY: long before the wait would have ended, and before B's first safety sweep (30 s).
    assert got["at"] - queued_at < 20, got["at"] - queued_at
    assert pair.b.ok(pair.b.get(pair.b.e(f"/runs/{queued['id']}")))["status"] == "running"


def test_a_secret_change_posted_to_a_moves_the_connections_b_follows(pair: Pair) -> None:
    cred = _credential(pair.a)
    _, machine_id, _ = new_machine(pair.a, "pc-2")
    conn = pair.a.ok(pair.a.post(pair.a.e("/connections"), {"name": "c", "target": {"machine": machine_id},
                                                            "credential": cred["id"]}), 201)
    before = pair.b.ok(pair.b.get(pair.b.e(f"/connections/{conn['id']}")))["secret_version"]
    written = pair.a.secret("vault", "robot", "Rotated-Pa55word!")  # on A, which runs no worker
    assert written["version"] != before
    _wait_for(lambda: pair.b.ok(pair.b.get(pair.b.e(f"/connections/{conn['id']}")))["secret_version"]
              == written["version"], 20, "the connection follows the new version")


def test_real_agents_on_b_run_a_queue_with_one_request_per_job(pair: Pair, tmp_path: Path) -> None:
    cred = _credential(pair.a)
    notes = tmp_path / "ran.txt"
    reg = pair.a.ok(pair.a.post(pair.a.e("/machine-registrations"), {}), 201)
    state = tmp_path / "agent-state"
    done = subprocess.run([CREDFLOW, "agent", "register", "--server", str(pair.b.http.base_url),
                           "--registration-token", reg["registration_token"], "--name", "real-pc", "--state-dir",
                           str(state)], env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    machine_id = {m["name"]: m["id"] for m in pair.a.ok(pair.a.get(pair.a.e("/machines")))["items"]}["real-pc"]
    note = "import os, sys; open(sys.argv[1], 'a').write(os.environ['CREDFLOW_RUN_ID'] + '\\n'); print('ran')"
    flow = pair.a.ok(pair.a.post(pair.a.e("/desktop-flows"), {"name": "note", "command": [
        sys.executable, "-c", note, str(notes)]}), 201)
    conn = pair.a.ok(pair.a.post(pair.a.e("/connections"), {"name": "c", "target": {"machine": machine_id},
                                                            "credential": cred["id"]}), 201)
    runs = [pair.a.ok(pair.a.post(pair.a.e("/runs"), {"desktop_flow": flow["id"], "connection": conn["id"]}), 201)
            for _ in range(4)]
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen([CREDFLOW, "agent", "run", "--state-dir", str(state), "--wait", "20"],
                                 env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        def ended() -> bool:
            return all(pair.a.ok(pair.a.get(pair.a.e(f"/runs/{r['id']}")))["status"] == "succeeded" for r in runs)

        _wait_for(ended, 60, "the four runs succeeded")
        # The queue is empty: the agent waits (204s), and a run queued later on A still reaches it.
        time.sleep(1.0)
        late = pair.a.ok(pair.a.post(pair.a.e("/runs"), {"desktop_flow": flow["id"], "connection": conn["id"]}),
                         201)
        _wait_for(lambda: pair.a.ok(pair.a.get(pair.a.e(f"/runs/{late['id']}")))["status"] == "succeeded", 15,
                  "the late run succeeded")
    finally:
        stop(agent)
    ids = [r["id"] for r in [*runs, late]]
    assert sorted(notes.read_text().split()) == sorted(ids)  # each ran once
    for run_id in ids:
        audit = pair.a.ok(pair.a.get(pair.a.e("/audit"), params={"object": run_id}))["items"]
        assert [r["action"] for r in audit].count("run.finish") == 1  # each result stored once
        assert pair.a.ok(pair.a.get(pair.a.e(f"/runs/{run_id}")))["log"] == "ran\n"
    text = log.read_text()
    assert text.count("came with its result") >= 3, text  # runs 2-4 came in the answer to the previous result
    assert "retrying" not in text and "gave up" not in text, text
