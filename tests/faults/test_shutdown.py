"""SIGTERM to ``credflow serve``: a request in flight still gets its answer, claims waiting for a job get 204
at once, a request that never ends is cut after the grace period, the process is gone within 10 s, and the
agent carries on with the next server on the same address."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN, Api, new_machine
from tests.e2e.server import free_port
from tests.faults.conftest import flow_on, machine_state, serve, starts, wait_for
from tests.machines.procs import agents


def _run(admin: Api, flow: str, conn: str) -> str:
    return str(admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow, "connection": conn}), 201)["id"])


def _variable(name: str) -> bytes:
    return json.dumps({"schema_name": name, "type": "text", "value": "kept"}).encode()


def _head(env: str, body: bytes) -> bytes:
    return (f"POST /api/v1/environments/{env}/environment-variables HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()


def test_sigterm_drains_the_server_and_the_agent_carries_on(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "data"
    notes = tmp_path / "starts.txt"
    with ExitStack() as stack:
        admin, proc = stack.enter_context(serve(data, tmp_path / "server-1.log", port))
        machine, state = machine_state(admin, "pc-drain", tmp_path)
        flow, conn = flow_on(admin, machine, notes)
        [agent] = stack.enter_context(agents([state], tmp_path))
        first = _run(admin, flow, conn)
        wait_for(lambda: admin.ok(admin.get(admin.e(f"/runs/{first}")))["status"] == "succeeded", 30, "a first run")
        waiting, _, _ = new_machine(admin, "pc-waiting")  # nothing is queued for it: its claim waits

        answers: dict[str, tuple[int, float]] = {}

        def claim() -> None:
            with httpx.Client(base_url=str(admin.http.base_url), timeout=90) as http:
                resp = http.post("/api/v1/machines/me/jobs/claim", params={"wait": 60},
                                 headers={"Authorization": f"Bearer {waiting.token}"})
            answers["claim"] = (resp.status_code, time.monotonic())

        claimer = threading.Thread(target=claim)
        claimer.start()
        # A request in flight: its headers and the start of its body are sent, the rest comes after the signal.
        body = _variable("sent_while_stopping")
        slow = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=15))
        slow.sendall(_head(admin.env, body) + body[:12])
        # And one that never ends: the server cuts it after its grace period rather than wait for ever.
        unfinished = _variable("never_sent_whole")
        stuck = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=15))
        stuck.sendall(_head(admin.env, unfinished) + unfinished[:12])
        time.sleep(0.5)  # all three are in the server now

        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        claimer.join(timeout=5)
        status, answered = answers["claim"]
        assert status == 204 and answered - signalled < 2.0
        time.sleep(1.0)
        slow.sendall(body[12:])
        assert slow.recv(65536).startswith(b"HTTP/1.1 201 ")
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
        stopped = time.monotonic() - signalled
        assert stopped < 10.0
        cut = stuck.recv(65536)  # uvicorn answers 500 to a request it cancels, or just closes
        assert cut == b"" or cut.startswith(b"HTTP/1.1 500 "), cut
        print(f"\nSIGTERM: the waiting claim answered 204 after {answered - signalled:.2f} s; a request in flight "
              f"for 1 s more got its answer; with another that never ended, the process was gone after "
              f"{stopped:.2f} s")
        log = (tmp_path / "server-1.log").read_text()
        assert "timeout graceful shutdown exceeded" in log and "still busy" not in log

        admin, _ = stack.enter_context(serve(data, tmp_path / "server-2.log", port))
        assert admin.ok(admin.get(admin.e("/environment-variables/sent_while_stopping")))["value"] == "kept"
        assert admin.get(admin.e("/environment-variables/never_sent_whole")).status_code == 404
        second = _run(admin, flow, conn)
        wait_for(lambda: admin.ok(admin.get(admin.e(f"/runs/{second}")))["status"] == "succeeded", 30,
                 "the agent takes the next run from the restarted server")
        assert agent.poll() is None
        assert starts(notes) == [first, second]
    agent_log = (tmp_path / "agent-0.log").read_text()
    assert "Traceback" not in agent_log and "ERROR" not in agent_log
