"""The seed's "Show dependencies": where an environment variable or a credential is used, and what that
means for deleting them."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, problem
from tests.solutions.conftest import connection, machine


def test_a_secret_variable_shows_its_credentials_connections_and_cloud_flows(admin: Api, seeded: dict[str, Any]
                                                                             ) -> None:
    me = admin.ok(admin.get("/me"))
    got = admin.ok(admin.get(admin.e("/environment-variables/robot_pass/dependencies")))
    assert got["credentials"] == [{"id": seeded["credential"]["id"], "name": "Robot login", "connections": 1}]
    [conn] = got["connections"]
    assert (conn["id"], conn["name"], conn["owner"]) == (seeded["connection"]["id"], "Robot conn", me["id"])
    assert conn["owner_email"] == me["email"] and conn["credential"] == seeded["credential"]["id"]
    assert got["cloud_flows"] == [{"id": seeded["cloud_flow"]["id"], "name": "Nightly invoices"}]
    assert got["counts"] == {"credentials": 1, "connections": 1, "cloud_flows": 1}
    assert got["next_cursor"] is None
    # The text variable of the same credential leads to the same places.
    assert admin.ok(admin.get(admin.e("/environment-variables/robot_user/dependencies")))["counts"] == got["counts"]


def test_a_credential_shows_its_connections_and_cloud_flows(admin: Api, seeded: dict[str, Any]) -> None:
    got = admin.ok(admin.get(admin.e(f"/credentials/{seeded['credential']['id']}/dependencies")))
    assert [c["name"] for c in got["connections"]] == ["Robot conn"]
    assert [f["name"] for f in got["cloud_flows"]] == ["Nightly invoices"]
    assert got["counts"] == {"connections": 1, "cloud_flows": 1}


def test_an_unused_variable_has_no_dependencies(admin: Api) -> None:
    admin.text_var("lonely", "x")
    got = admin.ok(admin.get(admin.e("/environment-variables/lonely/dependencies")))
    assert (got["credentials"], got["connections"], got["cloud_flows"]) == ([], [], [])
    assert got["counts"] == {"credentials": 0, "connections": 0, "cloud_flows": 0}


def test_connections_come_a_page_at_a_time_with_their_total(admin: Api, cred_setup: dict[str, Any]) -> None:
    second = admin.credential("Robot login 2", "robot_user", "robot_pass")
    target = machine(admin)
    made = {connection(admin, cred, f"conn {cred[:4]} {i}", target)["id"]
            for cred in (cred_setup["credential"]["id"], second["id"]) for i in range(3)}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        got = admin.ok(admin.get(admin.e("/environment-variables/robot_pass/dependencies"), params=params))
        assert len(got["connections"]) <= 2 and got["counts"]["connections"] == 6
        assert len(got["credentials"]) == 2
        seen += [c["id"] for c in got["connections"]]
        cursor = got["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 6


def test_a_cursor_the_server_did_not_hand_out_is_refused(admin: Api, cred_setup: dict[str, Any]) -> None:
    problem(admin.get(admin.e("/environment-variables/robot_pass/dependencies"), params={"cursor": "x/../y"}),
            400, "malformed_cursor")


def test_a_basic_user_sees_only_their_own_connections(admin: Api, cred_setup: dict[str, Any]) -> None:
    cred_id = cred_setup["credential"]["id"]
    target = machine(admin)
    connection(admin, cred_id, "admin conn", target)
    bob = admin.user("bob", "basic_user")
    admin.ok(admin.put(admin.e(f"/credentials/{cred_id}/shares/{bob.info['id']}"), {"role": "user"}))
    connection(bob, cred_id, "bob conn", target)
    for path in ("/environment-variables/robot_pass/dependencies", f"/credentials/{cred_id}/dependencies"):
        got = bob.ok(bob.get(bob.e(path)))
        assert [c["name"] for c in got["connections"]] == ["bob conn"] and got["counts"]["connections"] == 1
        assert admin.ok(admin.get(admin.e(path)))["counts"]["connections"] == 2


def test_dependencies_of_what_the_caller_cannot_see_are_not_found(admin: Api, cred_setup: dict[str, Any]) -> None:
    problem(admin.get(admin.e("/environment-variables/nope/dependencies")), 404, "variable_not_found")
    outsider = admin.user("eve", "basic_user")
    problem(outsider.get(outsider.e("/environment-variables/robot_pass/dependencies")), 404, "variable_not_found")
    problem(outsider.get(outsider.e(f"/credentials/{cred_setup['credential']['id']}/dependencies")), 404,
            "credential_not_found")


def test_a_variable_in_use_cannot_be_deleted_and_the_error_names_its_dependents(admin: Api,
                                                                              seeded: dict[str, Any]) -> None:
    body = problem(admin.delete(admin.e("/environment-variables/robot_pass")), 409, "in_use")
    assert [c["name"] for c in body["dependents"]["credentials"]] == ["Robot login"]
    assert [c["name"] for c in body["dependents"]["connections"]] == ["Robot conn"]
    assert [f["name"] for f in body["dependents"]["cloud_flows"]] == ["Nightly invoices"]
    assert admin.ok(admin.get(admin.e("/environment-variables/robot_pass")))["schema_name"] == "robot_pass"


def test_a_credential_in_use_is_deleted_only_by_force_and_its_connections_say_so(admin: Api,
                                                                                 seeded: dict[str, Any]) -> None:
    cred_id, conn_id = seeded["credential"]["id"], seeded["connection"]["id"]
    body = problem(admin.delete(admin.e(f"/credentials/{cred_id}")), 409, "in_use")
    assert [c["id"] for c in body["dependents"]["connections"]] == [conn_id]
    assert body["dependents"]["counts"]["connections"] == 1
    assert admin.delete(admin.e(f"/credentials/{cred_id}"), params={"force": "true"}).status_code == 204
    assert admin.ok(admin.get(admin.e(f"/connections/{conn_id}")))["status"] == "credential_deleted"
    got = admin.ok(admin.get(admin.e("/environment-variables/robot_pass/dependencies")))
    assert got["counts"] == {"credentials": 0, "connections": 0, "cloud_flows": 0}
