"""What operators see of a real ``credflow serve``: JSON log lines with a request id (also in the X-Request-ID
header), access lines by route template, and /metrics; and, with a canary password that goes through a real agent
and a rotation, that no secret value reaches either."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.faults.conftest import flow_on, machine_state, serve, starts, wait_for
from tests.machines.procs import agents

CANARY = "Canary-Pa55word-7f3b9e21"
ROTATED = "Canary-Rotated-c41d0a77"


def _lines(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(p, dict) and {"time", "level", "logger", "message", "request_id"} <= p.keys()
               for p in parsed), lines[:5]
    return parsed


def _value(text: str, name: str, **labels: str) -> float:
    """The value of one series of a Prometheus text, 0 when it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + "$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_json_lines_carry_the_request_id_the_answer_returns(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serve(tmp_path / "data", log, CREDFLOW_LOG_FORMAT="json") as (admin, _):
        mine = admin.http.get("/api/v1/me", headers={"X-Request-ID": "trace-4711",
                                                     "Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert mine.status_code == 200 and mine.headers["x-request-id"] == "trace-4711"
        odd = admin.http.get("/healthz", headers={"X-Request-ID": "no good <id> " + "x" * 300})
        fresh = odd.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", fresh)  # an insane id is replaced, not echoed
        missing = admin.get(admin.e("/connections/nothing-here"))
        assert missing.status_code == 404 and missing.headers["x-request-id"]
    lines = _lines(log)
    access = [p for p in lines if p["logger"] == "credflow.access"]
    me = next(p for p in access if p["request_id"] == "trace-4711")
    assert (me["method"], me["route"], me["status"]) == ("GET", "/api/v1/me", 200)
    assert isinstance(me["duration_ms"], float | int) and me["duration_ms"] >= 0
    assert any(p["request_id"] == fresh and p["route"] == "/healthz" for p in access)
    routes = {p["route"] for p in access}
    assert "/api/v1/environments/{env}/connections/{connection}" in routes  # the template, not the ids
    assert not any(admin.env in p["message"] for p in access)


def test_a_canary_password_reaches_neither_metrics_nor_logs_through_a_run_and_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serve(tmp_path / "data", log, CREDFLOW_LOG_FORMAT="json") as (admin, _):
        machine, state = machine_state(admin, "pc-canary", tmp_path)
        notes = tmp_path / "starts.txt"
        flow, conn = flow_on(admin, machine, notes, password=CANARY)
        with agents([state], tmp_path):
            first = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow, "connection": conn}), 201)
            wait_for(lambda: first["id"] in starts(notes), 60, "the run ran on the agent")
            version = admin.ok(admin.get(admin.e(f"/connections/{conn}")))["secret_version"]
            admin.secret("vault", "robot", ROTATED)  # rotate: a new version of the secret
            wait_for(lambda: admin.ok(admin.get(admin.e(f"/connections/{conn}")))["secret_version"] != version, 30,
                     "the connection follows the new version")
            second = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow, "connection": conn}), 201)
            wait_for(lambda: second["id"] in starts(notes), 60, "the second run ran")
            wait_for(lambda: admin.ok(admin.get(admin.e(f"/runs/{second['id']}")))["status"] == "succeeded", 30,
                     "the second run succeeded")
        text = httpx.get(f"{admin.http.base_url}/metrics").text
    assert _value(text, "credflow_claim_wait_seconds_count", outcome="job") >= 2
    assert _value(text, "credflow_rotation_lag_seconds_count") >= 1
    assert _value(text, "credflow_vault_calls_total", kind="builtin", result="ok") >= 1
    assert _value(text, "credflow_http_requests_total", method="POST", route="/api/v1/environments/{env}/runs",
                  status="201") == 2
    everything = text + log.read_text()
    _lines(log)
    for secret in (CANARY, ROTATED):
        assert secret not in everything
