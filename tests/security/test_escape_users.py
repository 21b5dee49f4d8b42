"""Path 5 and the user list: an administrator of one environment may not take over users beyond it (least of all
the organization's first administrator), and nobody lists the users of environments they have no part in."""

from __future__ import annotations

import re

from tests.conftest import Api, problem

NEW_PASSWORD = "Taken-0ver-Pa55word"


def _signs_in(api: Api, email: str, password: str) -> bool:
    """Whether the web sign-in page takes this email and password (it redirects to the next page)."""
    page = api.http.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    resp = api.http.post("/sign-in", data={"csrf_token": token.group(1), "email": email, "password": password,
                                           "next": "/"}, follow_redirects=False)
    return resp.status_code == 303


def _lab_admin(admin: Api) -> tuple[Api, dict]:  # type: ignore[type-arg]
    lab = admin.ok(admin.post("/environments", {"name": "lab"}), 201)
    return admin.user("labadmin", "system_administrator", env=lab["id"]), lab


def test_an_environment_administrator_may_not_set_the_first_administrators_password(admin: Api) -> None:
    lab_admin, _ = _lab_admin(admin)
    first = admin.ok(admin.get("/me"))
    assert first["organization_admin"] is True
    problem(lab_admin.post(f"/users/{first['id']}/password", {"password": NEW_PASSWORD}), 403, "not_your_user")
    # An organization administrator whose only role is in an environment the attacker administers: still not hers.
    boss = admin.ok(admin.post("/users", {"name": "boss", "email": "boss@example.com", "organization_admin": True,
                                          "environment_roles": {admin.env: "basic_user"}}), 201)
    same_env = admin.user("sysadmin", "system_administrator")
    problem(same_env.post(f"/users/{boss['id']}/password", {"password": NEW_PASSWORD}), 403, "not_your_user")
    assert not _signs_in(admin, "boss@example.com", NEW_PASSWORD)
    assert not _signs_in(admin, "admin@localhost", NEW_PASSWORD)


def test_an_environment_administrator_may_not_manage_a_user_with_roles_elsewhere(admin: Api) -> None:
    lab_admin, lab = _lab_admin(admin)
    both = admin.ok(admin.post("/users", {"name": "both", "email": "both@example.com", "environment_roles": {
        lab["id"]: "environment_maker", admin.env: "environment_maker"}}), 201)
    problem(lab_admin.post(f"/users/{both['id']}/password", {"password": NEW_PASSWORD}), 403, "not_your_user")
    assert not _signs_in(admin, "both@example.com", NEW_PASSWORD)


def test_an_environment_administrator_manages_the_users_of_its_own_environments(admin: Api) -> None:
    lab_admin, lab = _lab_admin(admin)
    mine = lab_admin.user("labmaker", "environment_maker", env=lab["id"])
    got = lab_admin.ok(lab_admin.post(f"/users/{mine.info['id']}/password", {"password": NEW_PASSWORD}))
    assert got["must_change_password"] is True
    assert _signs_in(admin, "labmaker@example.com", NEW_PASSWORD)


def test_only_an_organization_administrator_makes_organization_administrators(admin: Api) -> None:
    sysadmin = admin.user("sysadmin", "system_administrator")
    body = {"name": "boss", "email": "boss@example.com", "environment_roles": {admin.env: "basic_user"},
            "organization_admin": True}
    problem(sysadmin.post("/users", body), 403, "not_organization_admin")
    made = admin.ok(admin.post("/users", body), 201)
    assert made["organization_admin"] is True
    assert sysadmin.ok(sysadmin.get(f"/users/{made['id']}"))["organization_admin"] is True


def test_a_basic_user_lists_only_the_users_of_its_environments_and_their_roles_there(admin: Api) -> None:
    lab_admin, _ = _lab_admin(admin)
    secret_project = admin.ok(admin.post("/environments", {"name": "secret-project"}), 201)
    insider = admin.ok(admin.post("/users", {"name": "insider", "email": "insider@example.com",
                                             "environment_roles": {secret_project["id"]: "system_administrator",
                                                                   admin.env: "basic_user"}}), 201)
    basic = admin.user("basic", "basic_user")
    listed = {u["email"]: u for u in basic.ok(basic.get("/users", params={"limit": 500}))["items"]}
    assert "labadmin@example.com" not in listed
    assert set(listed["insider@example.com"]["environment_roles"]) == {admin.env}
    problem(basic.get(f"/users/{lab_admin.info['id']}"), 404, "user_not_found")
    assert listed["insider@example.com"]["id"] == insider["id"]
    everyone = {u["email"] for u in admin.ok(admin.get("/users", params={"limit": 500}))["items"]}
    assert {"labadmin@example.com", "insider@example.com", "basic@example.com"} <= everyone
