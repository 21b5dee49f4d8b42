"""The seed's credential rules, over the HTTP API."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, problem


def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    body = problem(resp, status, code)
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_a_credential_joins_a_text_username_and_a_secret_password(admin: Api, cred_setup: dict[str, Any]) -> None:
    cred = cred_setup["credential"]
    got = admin.ok(admin.get(admin.e(f"/credentials/{cred['id']}")))
    assert got["name"] == "Robot login" and got["description"] == "for the robot"
    assert got["username_variable"] == cred_setup["user_var"]["id"]
    assert got["password_variable"] == cred_setup["pass_var"]["id"]
    assert got["my_role"] == "owner" and got["owner"] == admin.ok(admin.get("/me"))["id"]
    assert {"id", "status", "created_at", "updated_at"} <= set(got)


def test_the_username_must_be_a_text_variable(admin: Api, cred_setup: dict[str, Any]) -> None:
    resp = admin.post(admin.e("/credentials"), {"name": "x", "username_variable": "robot_pass",
                                                "password_variable": "robot_pass"})
    _problem(resp, 422, "wrong_variable_type")


def test_the_password_must_be_a_secret_variable(admin: Api, cred_setup: dict[str, Any]) -> None:
    resp = admin.post(admin.e("/credentials"), {"name": "x", "username_variable": "robot_user",
                                                "password_variable": "robot_user"})
    _problem(resp, 422, "wrong_variable_type")
    assert len(admin.ok(admin.get(admin.e("/credentials")))["items"]) == 1


def test_the_variables_of_an_existing_credential_cannot_be_changed(admin: Api, cred_setup: dict[str, Any]) -> None:
    other = admin.text_var("other_user", "someone")
    cid = cred_setup["credential"]["id"]
    for field, value in (("username_variable", other["id"]), ("password_variable", "robot_pass")):
        _problem(admin.patch(admin.e(f"/credentials/{cid}"), {field: value}), 422, "credential_variables_immutable")
    got = admin.ok(admin.get(admin.e(f"/credentials/{cid}")))
    assert got["username_variable"] == cred_setup["user_var"]["id"]


def test_name_and_description_can_be_edited(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    got = admin.ok(admin.patch(admin.e(f"/credentials/{cid}"), {"name": "Renamed", "description": "new"}))
    assert got["name"] == "Renamed" and got["description"] == "new"
    assert admin.ok(admin.get(admin.e(f"/credentials/{cid}")))["name"] == "Renamed"


def test_names_are_unique_per_environment(admin: Api, cred_setup: dict[str, Any]) -> None:
    _problem(admin.post(admin.e("/credentials"), {"name": "Robot login", "username_variable": "robot_user",
                                                  "password_variable": "robot_pass"}), 409, "duplicate_name")
    other_env = admin.ok(admin.post("/environments", {"name": "test"}), 201)
    other = Api(admin.http, admin.token, other_env["id"])
    other.store("vault")
    other.secret("vault", "robot-password", "x")
    other.text_var("robot_user", "u")
    other.secret_var("robot_pass", "vault", "robot-password")
    assert other.credential("Robot login", "robot_user", "robot_pass")["name"] == "Robot login"


def test_deleting_a_credential_keeps_its_variables(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    assert admin.delete(admin.e(f"/credentials/{cid}")).status_code == 204
    _problem(admin.get(admin.e(f"/credentials/{cid}")), 404, "credential_not_found")
    names = {v["schema_name"] for v in admin.ok(admin.get(admin.e("/environment-variables")))["items"]}
    assert names == {"robot_user", "robot_pass"}


def test_a_variable_in_use_cannot_be_deleted(admin: Api, cred_setup: dict[str, Any]) -> None:
    body = _problem(admin.delete(admin.e("/environment-variables/robot_pass")), 409, "in_use")
    assert body["dependents"]["credentials"][0]["name"] == "Robot login"


def test_credentials_are_listed_with_my_role(admin: Api, cred_setup: dict[str, Any]) -> None:
    page = admin.ok(admin.get(admin.e("/credentials")))
    assert page["next_cursor"] is None
    assert [(c["name"], c["my_role"]) for c in page["items"]] == [("Robot login", "owner")]


def test_lists_page_with_limit_and_cursor(admin: Api, cred_setup: dict[str, Any]) -> None:
    for i in range(4):
        admin.credential(f"c{i}", "robot_user", "robot_pass")
    first = admin.ok(admin.get(admin.e("/credentials"), params={"limit": 2}))
    second = admin.ok(admin.get(admin.e("/credentials"), params={"limit": 2, "cursor": first["next_cursor"]}))
    third = admin.ok(admin.get(admin.e("/credentials"), params={"limit": 2, "cursor": second["next_cursor"]}))
    names = [c["name"] for p in (first, second, third) for c in p["items"]]
    assert names == ["Robot login", "c0", "c1", "c2", "c3"] and third["next_cursor"] is None
    _problem(admin.get(admin.e("/credentials"), params={"limit": 501}), 422, "invalid_request")
