"""Machines: single-use expiring registration tokens, online/offline, groups, and what machine tokens reach."""

from __future__ import annotations

import time
from typing import Any

from credflow.crypto.sealing import new_key_pair
from tests.conftest import Api, problem
from tests.machines.conftest import Machine, queue, register, registration


def _register(api: Api, token: str, name: str = "pc") -> Any:
    return api.post("/machines/register", {"registration_token": token, "name": name,
                                           "public_key": new_key_pair()[1]})


def _machines(admin: Api) -> list[dict[str, Any]]:
    return admin.ok(admin.get(admin.e("/machines")))["items"]  # type: ignore[no-any-return]


def test_a_registration_token_registers_one_machine_once(admin: Api) -> None:
    reg = registration(admin)
    assert reg["registration_token"] and reg["expires_at"]
    made = admin.ok(_register(admin, reg["registration_token"], "pc-1"), 201)
    assert made["machine_id"] and made["machine_token"]
    problem(_register(admin, reg["registration_token"], "pc-2"), 401, "registration_token_used")
    assert [m["name"] for m in _machines(admin)] == ["pc-1"]


def test_a_bad_or_expired_registration_token_changes_nothing(admin: Api) -> None:
    problem(_register(admin, "cfr_not-a-token"), 401, "registration_token_invalid")
    reg = registration(admin, expires_in_seconds=1)
    time.sleep(1.1)
    problem(_register(admin, reg["registration_token"]), 401, "registration_token_expired")
    assert _machines(admin) == []


def test_a_bad_public_key_or_taken_name_keeps_the_token_usable(admin: Api) -> None:
    register(admin, "pc-1")
    token = registration(admin)["registration_token"]
    bad = admin.post("/machines/register", {"registration_token": token, "name": "pc-2", "public_key": "short"})
    problem(bad, 422, "bad_public_key")
    problem(_register(admin, token, "pc-1"), 409, "duplicate_name")
    assert admin.ok(_register(admin, token, "pc-2"), 201)["machine_id"]


def test_only_makers_and_administrators_hand_out_registration_tokens(admin: Api) -> None:
    basic = admin.user("bob", "basic_user")
    problem(basic.post(basic.e("/machine-registrations"), {}), 403, "forbidden")
    maker = admin.user("mia", "environment_maker")
    assert registration(maker)["registration_token"]


def test_a_registered_machine_is_offline_until_its_first_heartbeat(admin: Api, machine: Machine) -> None:
    listed = _machines(admin)
    assert [(m["id"], m["status"], m["last_seen"]) for m in listed] == [(machine.id, "offline", None)]
    beat = machine.api.ok(machine.api.post("/machines/me/heartbeat"))
    assert beat["machine_id"] == machine.id and beat["status"] == "online"
    [seen] = _machines(admin)
    assert seen["status"] == "online" and seen["last_seen"] == beat["last_seen"]


def test_a_claim_counts_as_being_seen(admin: Api) -> None:
    pc = register(admin, "pc-2")
    assert pc.job() is None
    [seen] = _machines(admin)
    assert seen["status"] == "online" and seen["last_seen"]


def test_a_machine_not_seen_for_a_while_is_offline(admin: Api, machine: Machine, core: Any) -> None:
    machine.api.ok(machine.api.post("/machines/me/heartbeat"))
    assert _machines(admin)[0]["status"] == "online"
    core.settings.machine_offline_after_seconds = 1
    time.sleep(1.1)
    assert _machines(admin)[0]["status"] == "offline"
    # A heartbeat brings it back: online when listed within the second after it (a loaded machine may take
    # longer than that between the two requests, so it beats again, for up to 30 s).
    deadline = time.monotonic() + 30
    while True:
        machine.api.ok(machine.api.post("/machines/me/heartbeat"))
        status = _machines(admin)[0]["status"]
        if status == "online" or time.monotonic() > deadline:
            break
    assert status == "online"


def test_machine_tokens_reach_only_machine_endpoints(admin: Api, machine: Machine) -> None:
    for path in ("/environments", admin.e("/machines"), admin.e("/credentials"), admin.e("/runs"), "/users"):
        problem(machine.api.get(path), 403, "machine_token_not_allowed")
    problem(machine.api.post(admin.e("/machine-registrations"), {}), 403, "machine_token_not_allowed")
    assert machine.api.ok(machine.api.get("/me"))["kind"] == "machine"


def test_user_tokens_do_not_reach_machine_endpoints(admin: Api) -> None:
    problem(admin.post("/machines/me/heartbeat"), 403, "user_token_not_allowed")
    problem(admin.post("/machines/me/jobs/claim"), 403, "user_token_not_allowed")
    problem(admin.post("/machines/me/jobs/x/result", {"exit_code": 0, "log": ""}), 403, "user_token_not_allowed")


def test_a_deleted_machine_token_stops_working(admin: Api, machine: Machine) -> None:
    problem(admin.user("mia").delete(admin.e(f"/machines/{machine.id}")), 403, "not_owner")
    assert admin.delete(admin.e(f"/machines/{machine.id}")).status_code == 204
    problem(machine.api.post("/machines/me/heartbeat"), 401, "unauthenticated")
    assert _machines(admin) == []


def test_machine_groups_hold_machines_of_their_environment(admin: Api) -> None:
    a, b = register(admin, "pc-a"), register(admin, "pc-b")
    group = admin.ok(admin.post(admin.e("/machine-groups"), {"name": "robots", "machines": [a.id]}), 201)
    assert group["machines"] == [a.id]
    changed = admin.ok(admin.patch(admin.e(f"/machine-groups/{group['id']}"), {"machines": [a.id, "pc-b"]}))
    assert changed["machines"] == sorted([a.id, b.id])
    problem(admin.post(admin.e("/machine-groups"), {"name": "robots"}), 409, "duplicate_name")
    problem(admin.post(admin.e("/machine-groups"), {"name": "x", "machines": ["nope"]}), 404, "machine_not_found")
    other = admin.ok(admin.post(admin.e("/machine-groups"), {"name": "spare"}), 201)
    problem(admin.patch(admin.e(f"/machine-groups/{other['id']}"), {"name": "robots"}), 409, "duplicate_name")
    assert admin.ok(admin.get(admin.e(f"/machine-groups/{other['id']}")))["name"] == "spare"
    assert admin.delete(admin.e("/machine-groups/spare")).status_code == 204
    listed = {m["name"]: m["groups"] for m in _machines(admin)}
    assert listed == {"pc-a": [group["id"]], "pc-b": [group["id"]]}
    assert admin.delete(admin.e("/machine-groups/robots")).status_code == 204
    problem(admin.get(admin.e(f"/machine-groups/{group['id']}")), 404, "machine_group_not_found")
    assert len(_machines(admin)) == 2


def test_machines_of_another_environment_are_not_visible(admin: Api, machine: Machine) -> None:
    other = admin.ok(admin.post("/environments", {"name": "prod"}), 201)
    other_api = Api(admin.http, admin.token, other["id"])
    assert _machines(other_api) == []
    problem(other_api.get(other_api.e(f"/machines/{machine.id}")), 404, "machine_not_found")
    problem(other_api.post(other_api.e("/machine-groups"), {"name": "g", "machines": [machine.id]}), 404,
            "machine_not_found")


def test_a_machines_detail_shows_its_groups_and_latest_runs(admin: Api, setup: dict[str, Any]) -> None:
    machine = setup["machine"]
    group = admin.ok(admin.post(admin.e("/machine-groups"), {"name": "pool", "machines": [machine.id]}), 201)
    first, second = (queue(admin, setup["flow"]["id"], setup["connection"]["id"])["id"] for _ in range(2))
    for run_id in (first, second):
        job = machine.job()
        assert job is not None and job["run_id"] == run_id
        machine.api.ok(machine.finish(run_id, exit_code=0 if run_id == first else 2))
    detail = admin.ok(admin.get(admin.e(f"/machines/{machine.id}")))
    assert (detail["status"], detail["groups"]) == ("online", [group["id"]]) and detail["last_seen"]
    assert [(r["id"], r["status"], r["reason"]) for r in detail["runs"]] == [
        (second, "failed", "exit_code"), (first, "succeeded", None)]
    assert all("log" not in r for r in detail["runs"])
    assert admin.ok(admin.get(admin.e(f"/machines/{machine.id}")))["runs"] == detail["runs"]


def test_a_machines_detail_shows_only_the_runs_the_caller_sees(admin: Api, setup: dict[str, Any]) -> None:
    machine = setup["machine"]
    queue(admin, setup["flow"]["id"], setup["connection"]["id"])
    assert machine.job() is not None
    bob = admin.user("bob", "basic_user")
    assert bob.ok(bob.get(bob.e(f"/machines/{machine.id}")))["runs"] == []
    assert len(admin.ok(admin.get(admin.e(f"/machines/{machine.id}")))["runs"]) == 1


def test_a_machine_is_renamed_by_its_owner(admin: Api) -> None:
    mia = admin.user("mia", "environment_maker")
    pc = register(mia, "pc-1")
    register(admin, "pc-2")
    renamed = mia.ok(mia.patch(mia.e(f"/machines/{pc.id}"), {"name": "pc-1-renamed"}))
    assert (renamed["id"], renamed["name"]) == (pc.id, "pc-1-renamed")
    assert mia.ok(mia.get(mia.e("/machines/pc-1-renamed")))["id"] == pc.id
    problem(mia.patch(mia.e(f"/machines/{pc.id}"), {"name": "pc-2"}), 409, "duplicate_name")
    problem(mia.patch(mia.e(f"/machines/{pc.id}"), {"name": "  "}), 422, "empty_name")
    problem(mia.patch(mia.e(f"/machines/{pc.id}"), {"colour": "red"}), 422, "unknown_field")
    assert pc.api.ok(pc.api.post("/machines/me/heartbeat"))["machine_id"] == pc.id  # its token still works
    assert admin.ok(admin.patch(admin.e(f"/machines/{pc.id}"), {"name": "by-admin"}))["name"] == "by-admin"
