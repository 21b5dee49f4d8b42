"""Editing a connection: rename it, move it, switch it to a credential (the way most teams migrate), back to a
typed username and password, or to another credential; its status and secret_version follow, and its next run
receives what it now uses."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, problem
from tests.machines.conftest import Machine, connection, queue, register

TYPED_PASSWORD = "Typed-Pa55word!"


def _patch(api: Api, conn_id: str, body: dict[str, Any]) -> Any:
    return api.patch(api.e(f"/connections/{conn_id}"), body)


def _delivered(machine: Machine, api: Api, flow: str, conn: str) -> dict[str, Any]:
    queued = queue(api, flow, conn)
    job = machine.job()
    assert job is not None and job["run_id"] == queued["id"]
    machine.api.ok(machine.finish(job["run_id"]))
    return machine.open(job)


def test_a_typed_connection_switches_to_a_credential_and_its_next_run_gets_the_credential(
        admin: Api, setup: dict[str, Any]) -> None:
    machine: Machine = setup["machine"]
    typed = connection(admin, "typed", {"machine": machine.id}, username="svc", password=TYPED_PASSWORD)
    switched = admin.ok(_patch(admin, typed["id"], {"credential": setup["credential"]["id"]}))
    assert (switched["auth"], switched["credential"], switched["status"], switched["secret_version"]) == (
        "credential", setup["credential"]["id"], "connected", "1")
    assert switched["updated_at"] >= typed["updated_at"]
    assert admin.ok(admin.get(admin.e(f"/connections/{typed['id']}"))) == switched
    assert _delivered(machine, admin, setup["flow"]["id"], typed["id"]) == {
        "username": "robot@corp.example", "password": setup["password"], "version": "1"}


def test_a_connection_switches_back_to_typed_values(admin: Api, setup: dict[str, Any]) -> None:
    conn = setup["connection"]
    problem(_patch(admin, conn["id"], {"password": TYPED_PASSWORD}), 422, "missing_credential")
    back = admin.ok(_patch(admin, conn["id"], {"username": "svc", "password": TYPED_PASSWORD}))
    assert (back["auth"], back["credential"], back["status"], back["secret_version"]) == (
        "username_password", None, "connected", None)
    assert TYPED_PASSWORD not in str(back)
    assert _delivered(setup["machine"], admin, setup["flow"]["id"], conn["id"]) == {
        "username": "svc", "password": TYPED_PASSWORD, "version": None}


def test_a_typed_connection_changes_its_password_alone(admin: Api, setup: dict[str, Any]) -> None:
    machine: Machine = setup["machine"]
    typed = connection(admin, "typed", {"machine": machine.id}, username="svc", password=TYPED_PASSWORD)
    admin.ok(_patch(admin, typed["id"], {"password": "Rotated-Pa55!"}))
    assert _delivered(machine, admin, setup["flow"]["id"], typed["id"]) == {
        "username": "svc", "password": "Rotated-Pa55!", "version": None}
    problem(_patch(admin, typed["id"], {"password": ""}), 422, "missing_credential")


def test_a_connection_moves_to_another_credential_at_that_credentials_version(
        admin: Api, setup: dict[str, Any]) -> None:
    admin.secret("vault", "other-password", "Other-1")
    admin.secret("vault", "other-password", "Other-2")
    admin.secret_var("other_pass", "vault", "other-password")
    other = admin.credential("Other login", "robot_user", "other_pass")
    moved = admin.ok(_patch(admin, setup["connection"]["id"], {"credential": other["name"]}))
    assert (moved["credential"], moved["secret_version"], moved["status"]) == (other["id"], "2", "connected")
    assert _delivered(setup["machine"], admin, setup["flow"]["id"], moved["id"])["password"] == "Other-2"


def test_switching_to_a_credential_needs_the_callers_use_of_it(admin: Api, setup: dict[str, Any]) -> None:
    cid = setup["credential"]["id"]
    mia = admin.user("mia", "environment_maker")
    mine = connection(mia, "mia's", {"machine": setup["machine"].id}, username="mia", password=TYPED_PASSWORD)
    problem(_patch(mia, mine["id"], {"credential": cid}), 404, "credential_not_found")
    assert mia.ok(mia.get(mia.e(f"/connections/{mine['id']}"))) == mine
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/{mia.info['id']}"), {"role": "user"}))
    assert mia.ok(_patch(mia, mine["id"], {"credential": cid}))["credential"] == cid


def test_an_administrator_may_not_switch_a_connection_to_a_credential_its_owner_may_not_use(
        admin: Api, setup: dict[str, Any]) -> None:
    bob = admin.user("bob", "basic_user")
    bobs = connection(bob, "bob's", {"machine": setup["machine"].id}, username="bob", password=TYPED_PASSWORD)
    body = problem(_patch(admin, bobs["id"], {"credential": setup["credential"]["id"]}), 422,
                   "owner_may_not_use_credential")
    assert body["credential"] == setup["credential"]["id"]
    assert bob.ok(bob.get(bob.e(f"/connections/{bobs['id']}"))) == bobs


def test_a_connection_whose_credential_was_deleted_comes_back_on_another(admin: Api, setup: dict[str, Any]) -> None:
    admin.credential("Spare login", "robot_user", "robot_pass")
    assert admin.delete(admin.e(f"/credentials/{setup['credential']['id']}"), params={"force": True}
                        ).status_code == 204
    conn_path = admin.e(f"/connections/{setup['connection']['id']}")
    assert admin.ok(admin.get(conn_path))["status"] == "credential_deleted"
    renamed = admin.ok(admin.patch(conn_path, {"name": "still robot"}))
    assert (renamed["name"], renamed["status"]) == ("still robot", "credential_deleted")
    back = admin.ok(admin.patch(conn_path, {"credential": "Spare login"}))
    assert (back["status"], back["secret_version"]) == ("connected", "1")


def test_a_connection_is_renamed_and_moved_to_another_target(admin: Api, setup: dict[str, Any]) -> None:
    other = register(admin, "pc-2")
    group = admin.ok(admin.post(admin.e("/machine-groups"), {"name": "pool", "machines": [other.id]}), 201)
    conn_id = setup["connection"]["id"]
    moved = admin.ok(_patch(admin, conn_id, {"name": "robot on the pool", "target": {"machine_group": "pool"}}))
    assert (moved["name"], moved["target"]) == ("robot on the pool", {"machine_group": group["id"]})
    queue(admin, setup["flow"]["id"], conn_id)
    assert setup["machine"].job() is None
    assert other.job() is not None
    for bad, status, code in (({"target": {"computer": "x"}}, 422, "invalid_target"),
                              ({"target": {"machine": "nope"}}, 404, "machine_not_found"),
                              ({"name": " "}, 422, "empty_name"),
                              ({"credential": "nope"}, 404, "credential_not_found"),
                              ({"credential": setup["credential"]["id"], "password": "x"}, 422, "wrong_fields"),
                              ({"owner": "someone"}, 422, "unknown_field")):
        problem(_patch(admin, conn_id, bad), status, code)
    assert admin.ok(admin.get(admin.e(f"/connections/{conn_id}")))["name"] == "robot on the pool"


def test_a_connection_change_is_audited_without_values(admin: Api, setup: dict[str, Any]) -> None:
    conn_id = setup["connection"]["id"]
    admin.ok(_patch(admin, conn_id, {"username": "svc-typed", "password": TYPED_PASSWORD}))
    records = admin.ok(admin.get(admin.e("/audit"), params={"object": conn_id, "action": "connection.update"}))
    [change] = records["items"]
    assert change["detail"]["changed"] == ["username", "password"] and change["detail"]["credential"] is None
    assert TYPED_PASSWORD not in str(records) and "svc-typed" not in str(records)
