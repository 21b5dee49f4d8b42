"""The server remembers who a token names for ``auth_cache_seconds`` (half a second), yet whatever ends an
identity ends it at once on the server that made the change: each test uses the token, so that it is
remembered, makes the change and asks again at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from credflow.persistence.tables import ApiToken
from credflow.services.core import Core
from tests.conftest import Api, new_machine, problem


def test_a_revoked_token_stops_at_once_though_it_was_just_used(admin: Api) -> None:
    made = admin.ok(admin.post("/me/tokens", {"name": "ci"}), 201)
    ci = Api(admin.http, made["token"], admin.env)
    for _ in range(3):
        assert ci.get("/me").status_code == 200
    assert admin.delete(f"/me/tokens/{made['id']}").status_code == 204
    problem(ci.get("/me"), 401)
    problem(ci.get("/environments"), 401)


def test_a_disabled_user_stops_at_once_and_an_enabled_one_comes_back(admin: Api) -> None:
    maria = admin.user("maria")
    assert maria.get("/me").status_code == 200
    admin.ok(admin.patch(f"/users/{maria.info['id']}", {"disabled": True}))
    problem(maria.get("/me"), 401, "user_disabled")
    admin.ok(admin.patch(f"/users/{maria.info['id']}", {"disabled": False}))
    assert maria.get("/me").status_code == 200


def test_a_removed_user_stops_at_once(admin: Api) -> None:
    maria = admin.user("maria")
    assert maria.get("/me").status_code == 200
    assert admin.delete(f"/users/{maria.info['id']}").status_code == 204
    problem(maria.get("/me"), 401)


def test_a_replaced_machine_token_and_a_deleted_machine_stop_at_once(admin: Api) -> None:
    machine, machine_id, _ = new_machine(admin, "pc-1")
    assert machine.ok(machine.get("/me"))["name"] == "pc-1"
    new = machine.ok(machine.post("/machines/me/token"))["machine_token"]
    problem(machine.get("/me"), 401)
    renewed = Api(admin.http, new, admin.env)
    assert renewed.ok(renewed.get("/me"))["id"] == machine_id
    admin.ok(admin.patch(admin.e(f"/machines/{machine_id}"), {"name": "pc-2"}))
    assert renewed.ok(renewed.get("/me"))["name"] == "pc-2"  # a rename is seen at once too
    assert admin.delete(admin.e(f"/machines/{machine_id}")).status_code == 204
    problem(renewed.get("/me"), 401)


def test_a_token_that_expires_stops_at_once(admin: Api, core: Core) -> None:
    made = admin.ok(admin.post("/me/tokens", {"name": "short"}), 201)
    short = Api(admin.http, made["token"], admin.env)
    assert short.get("/me").status_code == 200
    with core.db.transaction() as s:  # as if its time had come
        s.execute(update(ApiToken).where(ApiToken.id == made["id"])
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    problem(short.get("/me"), 401, "token_expired")
