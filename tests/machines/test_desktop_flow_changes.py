"""Editing a desktop flow: its owner (or a system administrator) renames it or changes its command; runs still
queued run the new command."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, problem
from tests.machines.conftest import desktop_flow, queue


def test_a_desktop_flow_is_renamed_and_its_command_changed(admin: Api, setup: dict[str, Any]) -> None:
    flow = setup["flow"]
    waiting = queue(admin, flow["id"], setup["connection"]["id"])
    changed = admin.ok(admin.patch(admin.e(f"/desktop-flows/{flow['id']}"),
                                   {"name": "login-flow-2", "command": ["robot", "--login", "--fast"]}))
    assert (changed["id"], changed["name"], changed["command"]) == (flow["id"], "login-flow-2",
                                                                   ["robot", "--login", "--fast"])
    assert admin.ok(admin.get(admin.e("/desktop-flows/login-flow-2"))) == changed
    job = setup["machine"].job()
    assert job is not None and job["run_id"] == waiting["id"] and job["command"] == ["robot", "--login", "--fast"]


def test_a_desktop_flow_keeps_what_a_change_leaves_out(admin: Api, setup: dict[str, Any]) -> None:
    flow = setup["flow"]
    renamed = admin.ok(admin.patch(admin.e(f"/desktop-flows/{flow['id']}"), {"name": "renamed"}))
    assert renamed["command"] == flow["command"]
    recommanded = admin.ok(admin.patch(admin.e("/desktop-flows/renamed"), {"command": ["robot"]}))
    assert recommanded["name"] == "renamed"
    records = admin.ok(admin.get(admin.e("/audit"), params={"object": flow["id"],
                                                            "action": "desktop_flow.update"}))["items"]
    assert [r["detail"] for r in records] == [
        {"name": "renamed", "previous_name": "login-flow"},
        {"name": "renamed", "command": ["robot"], "previous_command": ["robot", "--login"]}]


def test_a_desktop_flow_change_is_checked_like_a_new_flow(admin: Api, setup: dict[str, Any]) -> None:
    other = desktop_flow(admin, "other")
    path = admin.e(f"/desktop-flows/{setup['flow']['id']}")
    problem(admin.patch(path, {"name": "other"}), 409, "duplicate_name")
    problem(admin.patch(path, {"command": []}), 422, "invalid_command")
    problem(admin.patch(path, {"command": [""]}), 422, "invalid_command")
    problem(admin.patch(path, {"name": ""}), 422, "empty_name")
    problem(admin.patch(path, {"solution": "x"}), 422, "unknown_field")
    assert admin.ok(admin.get(path)) == setup["flow"] and other["name"] == "other"


def test_only_makers_change_desktop_flows(admin: Api, setup: dict[str, Any]) -> None:
    bob = admin.user("bob", "basic_user")
    problem(bob.patch(bob.e(f"/desktop-flows/{setup['flow']['id']}"), {"name": "bob's"}), 403, "forbidden")
