"""``kill -9`` of the server between a claim and its result. A run is delivered at most once and never silently
dropped (docs/machines-and-runs.md, "When the server dies between a claim and its result"):

- killed while the flow runs: the agent keeps the result and sends it again until a server takes it;
- killed after the claim was committed but before the machine got the job: the run fails ``machine_lost`` at
  the machine's next heartbeat (its agent says it runs nothing), and the flow never starts;
- a machine that never comes back: its run fails ``machine_lost`` once the machine has not been seen for three
  times ``CREDFLOW_MACHINE_OFFLINE_AFTER_SECONDS``.
"""

from __future__ import annotations

import json
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Api, new_machine
from tests.e2e.server import free_port
from tests.faults.conftest import flow_on, machine_state, serve, starts, wait_for
from tests.machines.procs import agents


def _queue(admin: Api, flow: str, conn: str) -> str:
    return str(admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow, "connection": conn}), 201)["id"])


def _run(admin: Api, run_id: str) -> dict[str, Any]:
    return admin.ok(admin.get(admin.e(f"/runs/{run_id}")))  # type: ignore[no-any-return]


def _claim(url: str, token: str) -> dict[str, Any]:
    resp = httpx.post(f"{url}/api/v1/machines/me/jobs/claim", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_a_kill_9_between_claim_and_result_loses_no_run_and_runs_none_twice(tmp_path: Path) -> None:
    port, data, notes = free_port(), tmp_path / "data", tmp_path / "starts.txt"
    offline = {"CREDFLOW_MACHINE_OFFLINE_AFTER_SECONDS": "1"}
    with ExitStack() as stack:
        admin, proc = stack.enter_context(serve(data, tmp_path / "server-1.log", port, **offline))
        url = str(admin.http.base_url)
        machine, state = machine_state(admin, "pc-kill", tmp_path)
        flow, conn = flow_on(admin, machine, notes, seconds=2.0)
        gone, gone_id, _ = new_machine(admin, "pc-gone")  # a machine without an agent: the test claims for it
        gone_conn = admin.ok(admin.post(admin.e("/connections"), {
            "name": "gone", "target": {"machine": gone_id}, "credential": admin.ok(admin.get(admin.e(
                f"/connections/{conn}")))["credential"]}), 201)["id"]
        lost_answer = _queue(admin, flow, conn)
        lost_machine = _queue(admin, flow, gone_conn)
        # The claims are committed, and their answers never reach an agent (the process dies right after).
        machine_token = json.loads((state / "machine.json").read_text())["machine_token"]
        assert _claim(url, machine_token)["run_id"] == lost_answer
        assert _claim(url, gone.token)["run_id"] == lost_machine
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

        admin, proc = stack.enter_context(serve(data, tmp_path / "server-2.log", port, **offline))
        [agent] = stack.enter_context(agents([state], tmp_path))
        # The agent's first heartbeat says it runs nothing (or, should it start slower than 3 x 1 s, the machine
        # counts as gone): the run it never received fails, and is not run.
        failed = wait_for(lambda: (r := _run(admin, lost_answer))["status"] == "failed" and r, 15,
                          "the undelivered run fails")
        assert "[credflow] the run failed: machine_lost" in failed["log"]
        # Killed while the flow runs: the agent keeps the result and delivers it to the next server.
        running = _queue(admin, flow, conn)
        wait_for(lambda: running in starts(notes), 15, "the flow starts")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: f"reporting run {running} failed" in (tmp_path / "agent-0.log").read_text(), 15,
                 "the flow ends while no server runs")
        admin, proc = stack.enter_context(serve(data, tmp_path / "server-3.log", port, **offline))
        done = wait_for(lambda: (r := _run(admin, running))["status"] != "running" and r, 30,
                        "the result reaches the restarted server")
        assert done["status"] == "succeeded" and done["exit_code"] == 0, done
        # The machine that never came back: its run fails once it has not been seen for 3 x 1 s.
        dropped = wait_for(lambda: (r := _run(admin, lost_machine))["status"] == "failed" and r, 15,
                           "the run of the machine that is gone fails")
        assert "machine_lost (the machine stopped sending heartbeats)" in dropped["log"]
        assert agent.poll() is None
    assert starts(notes) == [running]  # the two undelivered runs never started; the other one started once
