"""Who may read ``GET /metrics`` of a real server, and what it never shows: without CREDFLOW_METRICS_TOKEN only a
caller on the server's own host that no proxy forwarded; with it, only a bearer of that token (not a user's API
token, not a machine's); and no name anyone typed, only ids, kinds and statuses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN, new_machine, problem
from tests.e2e.server import CREDFLOW, clean_env
from tests.faults.conftest import serve

METRICS_TOKEN = "metrics-scraper-token-0123456789abcdef-zyx"


def test_without_a_token_a_forwarded_caller_is_refused(tmp_path: Path) -> None:
    with serve(tmp_path / "data", tmp_path / "server.log") as (admin, _):
        url = f"{admin.http.base_url}/metrics"
        for forwarded in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                          {"X-Real-IP": "203.0.113.9"}):
            refused = httpx.get(url, headers=forwarded)
            body = problem(refused, 403, "metrics_not_allowed")
            assert "credflow_" not in refused.text and "CREDFLOW_METRICS_TOKEN" in body["detail"]
            # an API token does not open it either
            problem(httpx.get(url, headers={**forwarded, "Authorization": f"Bearer {ADMIN_TOKEN}"}), 403,
                    "metrics_not_allowed")
        assert "credflow_http_requests_total" in httpx.get(url).text  # the host itself


def test_with_a_token_only_its_bearer_reads_them(tmp_path: Path) -> None:
    with serve(tmp_path / "data", tmp_path / "server.log", CREDFLOW_METRICS_TOKEN=METRICS_TOKEN) as (admin, _):
        url = f"{admin.http.base_url}/metrics"
        machine, _, _ = new_machine(admin, "pc-1")
        maker = admin.user("maria")
        for bearer in (None, ADMIN_TOKEN, machine.token, maker.token, METRICS_TOKEN[:-1], METRICS_TOKEN + "x"):
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            refused = httpx.get(url, headers=headers)
            problem(refused, 401)
            assert "credflow_" not in refused.text
        ok = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert ok.status_code == 200 and "credflow_http_requests_total" in ok.text


def test_metrics_name_no_object_only_ids_kinds_and_statuses(tmp_path: Path) -> None:
    marker = "Zebra-Payroll"
    with serve(tmp_path / "data", tmp_path / "server.log") as (admin, _):
        admin.store(f"{marker}-vault")
        admin.secret(f"{marker}-vault", f"{marker}-secret", "S3cret-Value-91")
        admin.text_var("Zebra_Payroll_user", "robot@corp.example")
        admin.secret_var("Zebra_Payroll_pass", f"{marker}-vault", f"{marker}-secret")
        cred = admin.credential(f"{marker} credential", "Zebra_Payroll_user", "Zebra_Payroll_pass")
        _, machine_id, _ = new_machine(admin, f"{marker}-pc")
        flow = admin.ok(admin.post(admin.e("/desktop-flows"), {"name": f"{marker} flow", "command": ["true"]}), 201)
        conn = admin.ok(admin.post(admin.e("/connections"), {"name": f"{marker} connection",
                                                            "target": {"machine": machine_id},
                                                            "credential": cred["id"]}), 201)
        admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow["id"], "connection": conn["id"]}), 201)
        admin.get(admin.e(f"/credentials/{marker}-nothing"))
        text = httpx.get(f"{admin.http.base_url}/metrics").text
    assert f'credflow_runs_queued{{target="machine",target_id="{machine_id}"}} 1.0' in text
    assert "zebra" not in text.lower() and admin.env not in text and "S3cret" not in text


def test_the_server_refuses_a_weak_metrics_token_and_says_why(tmp_path: Path) -> None:
    for weak in ("metrics", "has spaces but is long enough 0123456789"):
        done = subprocess.run([CREDFLOW, "serve", "--port", "1", "--data-dir", str(tmp_path / "data")],
                              env=clean_env(CREDFLOW_METRICS_TOKEN=weak), capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 2, done.stderr
        assert "CREDFLOW_METRICS_TOKEN is too weak" in done.stderr and weak not in done.stderr
