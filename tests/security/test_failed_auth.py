"""An attacker on the network guesses credentials through the real API: bearer tokens, event keys, registration
tokens and web passwords. After ``failed_auth_limit`` failures from one address the address is locked out
(429 with Retry-After); what it tried is written to the audit trail as one record per address and minute with a
count, not one per request; and the webhook refuses a body without a key before reading it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from credflow.api.app import create_app
from credflow.crypto.sealing import new_key_pair
from credflow.persistence.tables import AuditRecord
from credflow.services.access import audit_log, failed_auth
from credflow.services.core import Core
from credflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, Api, problem
from tests.e2e.server import running_server

LIMIT = 20  # the default of failed_auth_limit
PASSWORD = "admin-password-for-pages"


def bad(api: Api, n: int, path: str | None = None) -> list[httpx.Response]:
    """``n`` requests with tokens that match nobody, as the attacker sends them."""
    path = path or f"/api/v1/environments/{api.env}/credentials"
    return [api.http.get(path, headers={"Authorization": f"Bearer cfu_guess-{i:04d}-0000000000000"})
            for i in range(n)]


def audit_rows(core: Core, action: str = "auth.failed") -> list[dict[str, Any]]:
    with core.db.read() as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq))
        return [{"env_id": r.env_id, "actor": r.actor, "detail": r.detail} for r in rows]


def audit_count(core: Core) -> int:
    with core.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditRecord)) or 0)


@pytest.fixture
def same_minute() -> None:
    """Start well inside a minute, so that the failures of one test fall in one audit window."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def test_many_bad_tokens_from_one_address_are_locked_out_with_retry_after(admin: Api) -> None:
    fresh = admin.user("maria")  # her token has never been used from this address
    for resp in bad(admin, LIMIT):
        problem(resp, 401, "unauthenticated")
    locked = bad(admin, 1)[0]
    body = problem(locked, 429, "too_many_failed_sign_ins")
    wait = int(locked.headers["retry-after"])
    assert 0 < wait <= 61 and body["retry_after"] == wait
    # A right token never used from this address waits like a wrong one: the answer tells nothing of the token.
    problem(fresh.get("/me"), 429, "too_many_failed_sign_ins")
    # The administrator's token worked from here before the lockout: it keeps working.
    assert admin.ok(admin.get("/me"))["id"]
    # Every credential counts and every credential waits: event keys and registration tokens too.
    problem(admin.http.post("/events/eventgrid", params={"key": "cfe_guess"}, json=[]), 429, "too_many_failed_sign_ins")
    _, public = new_key_pair()
    register = {"registration_token": "cfr_guess", "name": "pc", "public_key": public}
    problem(admin.http.post("/api/v1/machines/register", json=register), 429, "too_many_failed_sign_ins")


def test_event_keys_and_registration_tokens_count_as_failures(admin: Api) -> None:
    _, public = new_key_pair()
    for i in range(LIMIT // 2):
        problem(admin.http.post("/events/eventgrid", params={"key": f"cfe_guess-{i}"}, json=[]), 401,
                "invalid_event_key")
        problem(admin.http.post("/api/v1/machines/register", json={"registration_token": f"cfr_guess-{i}",
                                                                   "name": "pc", "public_key": public}), 401)
    problem(bad(admin, 1)[0], 429, "too_many_failed_sign_ins")
    # No key at all is not an attempt: it is refused, and not counted.
    problem(admin.http.post("/events/eventgrid", json=[]), 401, "missing_event_key")


def test_the_lockout_ends_when_the_window_has_passed(core: Core, settings: Settings) -> None:
    settings.failed_auth_limit, settings.failed_auth_window_seconds = 3, 1
    with TestClient(create_app(settings, core)) as client:
        api = Api(client, ADMIN_TOKEN, "default")
        for resp in bad(api, 3):
            problem(resp, 401)
        problem(bad(api, 1)[0], 429, "too_many_failed_sign_ins")
        time.sleep(1.2)
        problem(bad(api, 1)[0], 401, "unauthenticated")


def test_failures_are_audited_once_per_address_and_minute_with_a_count(admin: Api, core: Core,
                                                                       same_minute: None) -> None:
    before = audit_count(core)
    bad(admin, 50)
    assert audit_count(core) == before  # the requests themselves write nothing
    assert failed_auth.flush(core, everything=True) == 1
    assert audit_count(core) == before + 1
    detail = audit_rows(core)[-1]["detail"]
    assert detail["client"] == "testclient" and detail["count"] == LIMIT and detail["refused"] == 50 - LIMIT
    assert detail["reasons"] == {"invalid_token": LIMIT}
    assert detail["paths"] == [f"/api/v1/environments/{admin.env}/credentials"]
    assert "cfu_guess" not in repr(detail)  # never a token
    # The environment the path named sees it; the chain holds.
    seen = admin.ok(admin.get(admin.e("/audit"), params={"action": "auth.failed"}))["items"]
    assert [r["detail"]["count"] for r in seen] == [LIMIT]
    assert audit_log.check_chain(core)[1] == []


def test_the_counts_are_written_when_the_server_stops(core: Core, settings: Settings, same_minute: None) -> None:
    with TestClient(create_app(settings, core)) as client:
        bad(Api(client, ADMIN_TOKEN, "default"), 5, "/api/v1/me")
        assert audit_rows(core) == []
    rows = audit_rows(core)
    assert len(rows) == 1 and rows[0]["detail"]["count"] == 5 and rows[0]["env_id"] is None


def test_a_locked_out_address_may_not_try_a_password_even_the_right_one(admin: Api, client: TestClient) -> None:
    admin.ok(admin.post(f"/users/{admin.ok(admin.get('/me'))['id']}/password", {"password": PASSWORD}))
    bad(admin, LIMIT)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text)
    assert csrf
    resp = client.post("/sign-in", data={"csrf_token": csrf.group(1), "email": "admin@localhost",
                                         "password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0
    assert "too_many_failed_sign_ins" in resp.text and "credflow_session" not in resp.headers.get("set-cookie", "")


# --- the webhook, on a real server ------------------------------------------------------------------------------
def memory(pid: int) -> dict[str, int]:
    """The process's resident memory now (VmRSS) and at its highest (VmHWM), in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) // 1024
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    with running_server(tmp_path / "data", {"CREDFLOW_RUN_WORKERS": "false"}, clean=True,
                        log=tmp_path / "server.log") as (url, proc):
        yield url, proc.pid


class HundredMb:
    """100 MB of body, counting what was actually sent."""

    def __init__(self) -> None:
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        block = b" " * (1024 * 1024)
        for _ in range(100):
            self.sent += len(block)
            yield block


def test_the_webhook_refuses_100_mb_without_a_key_and_never_reads_it(server: tuple[str, int]) -> None:
    url, pid = server
    body = HundredMb()
    before = memory(pid)
    resp = httpx.post(f"{url}/events/eventgrid", content=iter(body), headers={"Content-Type": "application/json"},
                      timeout=60)
    after = memory(pid)
    problem(resp, 401, "missing_event_key")
    assert body.sent < 50 * 1024 * 1024  # the server closed the connection: the rest was never sent
    assert after["VmHWM"] - before["VmHWM"] < 30, (before, after)  # nor held in memory


def test_the_webhook_refuses_a_declared_100_mb_at_once(server: tuple[str, int]) -> None:
    url, pid = server
    body = HundredMb()
    before = memory(pid)
    resp = httpx.post(f"{url}/events/eventgrid", content=iter(body), timeout=60,
                      headers={"Content-Type": "application/json", "Content-Length": str(100 * 1024 * 1024)})
    problem(resp, 413, "body_too_large")
    assert body.sent < 50 * 1024 * 1024
    assert memory(pid)["VmHWM"] - before["VmHWM"] < 30
