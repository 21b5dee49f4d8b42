"""Personal access tokens through the HTTP API: made with an expiry, listed with their last use, revoked at once;
the token ``POST /users`` returns is one of them; machines replace their own token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from credflow.persistence.tables import ApiToken
from credflow.services.core import Core
from tests.conftest import Api, new_machine, problem


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _days_from_now(value: str) -> float:
    return (_at(value) - datetime.now(UTC)).total_seconds() / 86400


def _mine(api: Api) -> list[dict[str, Any]]:
    return api.ok(api.get("/me/tokens"))["items"]  # type: ignore[no-any-return]


def test_a_token_is_made_listed_used_and_revoked(admin: Api) -> None:
    maker = admin.user("maria")
    made = maker.ok(maker.post("/me/tokens", {"name": "laptop"}), 201)
    assert made["token"].startswith("cfu_") and made["name"] == "laptop"
    assert 89.9 < _days_from_now(made["expires_at"]) <= 90
    assert made["last_used_at"] is None
    laptop = Api(admin.http, made["token"], admin.env)
    assert laptop.ok(laptop.get("/me"))["email"] == "maria@example.com"

    listed = {t["name"]: t for t in _mine(maker)}
    assert set(listed) == {"initial", "laptop"}  # the token POST /users returned is one of them
    assert all("token" not in t for t in listed.values())
    assert listed["laptop"]["last_used_at"] is not None  # used just now, by GET /me
    assert 89.9 < _days_from_now(listed["initial"]["expires_at"]) <= 90

    assert maker.delete(f"/me/tokens/{made['id']}").status_code == 204
    problem(laptop.get("/me"), 401, "unauthenticated")  # at once
    assert {t["name"] for t in _mine(maker)} == {"initial"}
    problem(maker.delete(f"/me/tokens/{made['id']}"), 404, "token_not_found")


def test_expiry_is_chosen_from_one_to_365_days(admin: Api) -> None:
    year = admin.ok(admin.post("/me/tokens", {"name": "ci", "expires_in_days": 365}), 201)
    assert 364.9 < _days_from_now(year["expires_at"]) <= 365
    day = admin.ok(admin.post("/me/tokens", {"name": "today", "expires_in_days": 1}), 201)
    assert 0.9 < _days_from_now(day["expires_at"]) <= 1
    for bad in (0, 366, -1, "soon"):
        problem(admin.post("/me/tokens", {"name": "x", "expires_in_days": bad}), 422, "invalid_request")
    problem(admin.post("/me/tokens", {"name": "   "}), 422, "empty_name")
    problem(admin.post("/me/tokens", {}), 422, "invalid_request")


def test_an_expired_token_answers_401(admin: Api, core: Core) -> None:
    made = admin.ok(admin.post("/me/tokens", {"name": "short"}), 201)
    short = Api(admin.http, made["token"], admin.env)
    assert short.get("/me").status_code == 200
    with core.db.transaction() as s:
        s.execute(update(ApiToken).where(ApiToken.id == made["id"])
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    problem(short.get("/me"), 401, "token_expired")
    listed = {t["id"]: t for t in _mine(admin)}
    assert listed[made["id"]]["expired"] is True


def test_last_use_is_written_at_most_once_a_minute(admin: Api, core: Core) -> None:
    made = admin.ok(admin.post("/me/tokens", {"name": "busy"}), 201)
    busy = Api(admin.http, made["token"], admin.env)
    busy.ok(busy.get("/me"))
    first = {t["id"]: t for t in _mine(admin)}[made["id"]]["last_used_at"]
    for _ in range(5):
        busy.ok(busy.get("/me"))
    assert {t["id"]: t for t in _mine(admin)}[made["id"]]["last_used_at"] == first  # no write per request
    with core.db.transaction() as s:  # a minute later
        s.execute(update(ApiToken).where(ApiToken.id == made["id"])
                  .values(last_used_at=_at(first) - timedelta(seconds=61)))
    busy.ok(busy.get("/me"))
    later = {t["id"]: t for t in _mine(admin)}[made["id"]]["last_used_at"]
    assert _at(later) >= _at(first)


def test_administrators_list_and_revoke_the_tokens_of_users_they_manage(admin: Api) -> None:
    maker = admin.user("maria")
    listed = admin.ok(admin.get(f"/users/{maker.info['id']}/tokens"))["items"]
    assert [t["name"] for t in listed] == ["initial"]
    assert admin.delete(f"/users/{maker.info['id']}/tokens/{listed[0]['id']}").status_code == 204
    problem(maker.get("/me"), 401)
    problem(admin.delete(f"/users/{maker.info['id']}/tokens/{listed[0]['id']}"), 404, "token_not_found")
    # a token of another user is not found under this one
    mine = admin.ok(admin.get("/me/tokens"))["items"][0]
    other = admin.user("other")
    problem(admin.delete(f"/users/{other.info['id']}/tokens/{mine['id']}"), 404, "token_not_found")
    assert admin.get("/me").status_code == 200


def test_a_machine_replaces_its_token_and_the_old_one_stops(admin: Api) -> None:
    machine, _, _ = new_machine(admin, "pc-1")
    old = machine.token
    assert machine.post("/machines/me/heartbeat", {}).status_code == 200
    got = machine.ok(machine.post("/machines/me/token"))
    assert got["machine_token"].startswith("cfm_") and got["machine_token"] != old
    problem(machine.post("/machines/me/heartbeat", {}), 401)
    renewed = Api(admin.http, got["machine_token"], admin.env)
    assert renewed.post("/machines/me/heartbeat", {}).status_code == 200
    problem(admin.post("/machines/me/token"), 403, "user_token_not_allowed")
    problem(renewed.get("/me/tokens"), 403, "machine_token_not_allowed")
    problem(renewed.post("/me/tokens", {"name": "x"}), 403, "machine_token_not_allowed")


def test_a_disabled_machine_claims_nothing_until_enabled(admin: Api, cred_setup: dict[str, Any]) -> None:
    machine, machine_id, _ = new_machine(admin, "pc-2")
    flow = admin.ok(admin.post(admin.e("/desktop-flows"), {"name": "job", "command": ["true"]}), 201)
    conn = admin.ok(admin.post(admin.e("/connections"), {"name": "robot", "target": {"machine": machine_id},
                                                         "credential": cred_setup["credential"]["id"]}), 201)
    got = admin.ok(admin.patch(admin.e(f"/machines/{machine_id}"), {"disabled": True}))
    assert got["disabled"] is True
    run = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow["id"], "connection": conn["id"]}), 201)
    assert machine.post("/machines/me/jobs/claim", params={"wait": 0}).status_code == 204
    assert machine.post("/machines/me/heartbeat", {}).status_code == 200  # it still says it is there
    assert admin.ok(admin.get(admin.e(f"/runs/{run['id']}")))["status"] == "queued"
    assert admin.ok(admin.get(admin.e(f"/machines/{machine_id}")))["disabled"] is True
    admin.ok(admin.patch(admin.e(f"/machines/{machine_id}"), {"disabled": False}))
    job = machine.post("/machines/me/jobs/claim", params={"wait": 0})
    assert job.status_code == 200 and job.json()["run_id"] == run["id"]


def test_the_server_refuses_a_weak_bootstrap_token_and_says_why(tmp_path: Any) -> None:
    import subprocess

    from credflow.services.access.startup import check_bootstrap_token
    from tests.e2e.server import CREDFLOW, clean_env

    check_bootstrap_token("cfu_" + "A1-_" * 7)  # 32 characters of the URL-safe alphabet
    for weak in ("admin", "cfu_short-0123456789abcdef", "cfu_has spaces and is long enough 0123"):
        done = subprocess.run([CREDFLOW, "serve", "--port", "1", "--data-dir", str(tmp_path / "data")],
                              env=clean_env(CREDFLOW_BOOTSTRAP_TOKEN=weak), capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 2, done.stderr
        assert "CREDFLOW_BOOTSTRAP_TOKEN is too weak" in done.stderr and "32 characters" in done.stderr
        assert weak not in done.stderr  # the token itself is never printed
