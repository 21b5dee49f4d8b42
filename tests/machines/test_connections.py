"""Connections: a machine or group, and a credential the creator may use, or a username and password typed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Api, problem
from tests.machines.conftest import Machine, connection, desktop_flow, queue


def _share(admin: Api, cred_id: str, who: Api, role: str = "user") -> None:
    admin.ok(admin.put(admin.e(f"/credentials/{cred_id}/shares/{who.info['id']}"), {"role": role}))


def test_a_connection_with_a_credential_says_what_the_next_run_receives(
        admin: Api, cred_setup: dict[str, Any], machine: Machine) -> None:
    cid = cred_setup["credential"]["id"]
    made = connection(admin, "robot", {"machine": machine.id}, credential=cid)
    assert made["target"] == {"machine": machine.id} and made["credential"] == cid
    assert made["status"] == "connected" and made["secret_version"] == "1"
    assert made["owner"] == admin.ok(admin.get("/me"))["id"] and made["auth"] == "credential"
    assert admin.ok(admin.get(admin.e(f"/connections/{made['id']}"))) == made


def test_creating_a_connection_needs_at_least_user_on_the_credential(
        admin: Api, cred_setup: dict[str, Any], machine: Machine) -> None:
    cid = cred_setup["credential"]["id"]
    bob = admin.user("bob", "basic_user")
    body = {"name": "mine", "target": {"machine": machine.id}, "credential": cid}
    problem(bob.post(bob.e("/connections"), body), 404, "credential_not_found")
    assert admin.ok(admin.get(admin.e("/connections")))["items"] == []
    _share(admin, cid, bob, "user")
    made = bob.ok(bob.post(bob.e("/connections"), body), 201)
    assert made["owner"] == bob.info["id"] and made["status"] == "connected"


def test_a_connection_without_a_credential_keeps_the_typed_values_hidden(
        admin: Api, machine: Machine, settings: Any) -> None:
    made = connection(admin, "typed", {"machine": machine.id}, username="svc-robot@corp.example",
                      password="Typed-Pa55word!")
    assert made["auth"] == "username_password" and made["credential"] is None and made["status"] == "connected"
    shown = admin.get(admin.e(f"/connections/{made['id']}")).text + admin.get(admin.e("/connections")).text
    assert "Typed-Pa55word!" not in shown and "svc-robot@corp.example" not in shown
    for f in Path(settings.data_dir).rglob("*"):
        if f.is_file():
            assert b"Typed-Pa55word!" not in f.read_bytes() and b"svc-robot@corp" not in f.read_bytes(), f


def test_a_connection_takes_either_a_credential_or_a_username_and_password(
        admin: Api, cred_setup: dict[str, Any], machine: Machine) -> None:
    target = {"machine": machine.id}
    both = {"name": "x", "target": target, "credential": cred_setup["credential"]["id"], "username": "u",
            "password": "p"}
    problem(admin.post(admin.e("/connections"), both), 422, "wrong_fields")
    problem(admin.post(admin.e("/connections"), {"name": "x", "target": target}), 422, "missing_credential")
    problem(admin.post(admin.e("/connections"), {"name": "x", "target": target, "username": "u"}), 422,
            "missing_credential")
    assert admin.ok(admin.get(admin.e("/connections")))["items"] == []


def test_a_connection_names_a_machine_or_group_of_its_environment(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    problem(admin.post(admin.e("/connections"), {"name": "x", "target": {"machine": "nope"}, "credential": cid}),
            404, "machine_not_found")
    problem(admin.post(admin.e("/connections"), {"name": "x", "target": {"machine_group": "nope"},
                                                 "credential": cid}), 404, "machine_group_not_found")
    problem(admin.post(admin.e("/connections"), {"name": "x", "target": {"computer": "pc"}, "credential": cid}),
            422, "invalid_target")
    problem(admin.post(admin.e("/connections"), {"name": "x", "target": {"machine": "a"}, "credential": "nope"}),
            404, "machine_not_found")


def test_connections_are_seen_by_their_owner_and_administrators(
        admin: Api, cred_setup: dict[str, Any], machine: Machine) -> None:
    cid = cred_setup["credential"]["id"]
    mia, bob = admin.user("mia", "environment_maker"), admin.user("bob", "basic_user")
    _share(admin, cid, mia)
    mine = connection(mia, "mia's", {"machine": machine.id}, credential=cid)
    assert [c["id"] for c in mia.ok(mia.get(mia.e("/connections")))["items"]] == [mine["id"]]
    assert bob.ok(bob.get(bob.e("/connections")))["items"] == []
    problem(bob.get(bob.e(f"/connections/{mine['id']}")), 404, "connection_not_found")
    problem(bob.delete(bob.e(f"/connections/{mine['id']}")), 404, "connection_not_found")
    assert [c["id"] for c in admin.ok(admin.get(admin.e("/connections")))["items"]] == [mine["id"]]


def test_a_connection_with_runs_waiting_cannot_be_deleted(admin: Api, setup: dict[str, Any]) -> None:
    conn = setup["connection"]["id"]
    queued = queue(admin, setup["flow"]["id"], conn)
    body = problem(admin.delete(admin.e(f"/connections/{conn}")), 409, "in_use")
    assert body["dependents"]["runs"] == [queued["id"]]
    admin.ok(admin.post(admin.e(f"/runs/{queued['id']}/cancel")))
    assert admin.delete(admin.e(f"/connections/{conn}")).status_code == 204
    problem(admin.get(admin.e(f"/connections/{conn}")), 404, "connection_not_found")


def test_a_basic_user_runs_desktop_flows_on_their_own_connection(
        admin: Api, cred_setup: dict[str, Any], machine: Machine) -> None:
    cid = cred_setup["credential"]["id"]
    flow = desktop_flow(admin)
    bob = admin.user("bob", "basic_user")
    problem(bob.post(bob.e("/desktop-flows"), {"name": "mine", "command": ["x"]}), 403, "forbidden")
    _share(admin, cid, bob)
    conn = connection(bob, "bob's", {"machine": machine.id}, credential=cid)
    started = queue(bob, flow["name"], conn["id"])
    assert started["status"] == "queued"
    admins = connection(admin, "admin's", {"machine": machine.id}, credential=cid)
    problem(bob.post(bob.e("/runs"), {"desktop_flow": flow["id"], "connection": admins["id"]}), 403,
            "connection_not_yours")
