"""Users who leave, through the HTTP API: disabled (every token and session answers 401, enabled again they
work), roles taken away (connections turn ``access_revoked``, teams of that environment are left), removed (the
row stays as the owner of what it made, until an administrator reassigns it)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from credflow.services.core import Core
from tests.conftest import Api, problem
from tests.sharing.conftest import add_connection, connection_status

PASSWORD = "a-first-Pa55word-for-pages"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def signed_in_browser(admin: Api, user: Api, password: str = PASSWORD) -> TestClient:
    """A browser signed in to the pages as ``user`` (an administrator sets the password, the user keeps it)."""
    admin.ok(admin.post(f"/users/{user.info['id']}/password", {"password": password}))
    assert isinstance(admin.http, TestClient)
    browser = TestClient(admin.http.app)
    token = _csrf(browser.get("/sign-in").text)
    resp = browser.post("/sign-in", data={"csrf_token": token, "email": user.info["email"], "password": password,
                                          "next": "/"}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return browser


def page_status(browser: TestClient | httpx.Client, path: str = "/") -> int:
    """200 for a signed-in page (after the first password change, if asked); 303 to /sign-in without a session."""
    resp = browser.get(path, follow_redirects=False)
    if resp.status_code == 303 and resp.headers["location"].startswith("/sign-in"):
        return 303
    return 200


def test_a_disabled_user_is_refused_everywhere_at_once_and_enabled_again(admin: Api) -> None:
    maria = admin.user("maria")
    second = Api(admin.http, maria.ok(maria.post("/me/tokens", {"name": "ci"}), 201)["token"], admin.env)
    browser = signed_in_browser(admin, maria)
    assert page_status(browser) == 200
    got = admin.ok(admin.patch(f"/users/{maria.info['id']}", {"disabled": True}))
    assert got["disabled"] is True
    for api in (maria, second):
        problem(api.get("/me"), 401, "user_disabled")
        problem(api.get(api.e("/credentials")), 401, "user_disabled")
    assert page_status(browser) == 303
    assert admin.ok(admin.get(f"/users/{maria.info['id']}"))["disabled"] is True
    admin.ok(admin.patch(f"/users/{maria.info['id']}", {"disabled": False}))
    assert maria.get("/me").status_code == 200 and second.get("/me").status_code == 200  # tokens come back
    assert page_status(browser) == 303  # sessions do not: they ended


def test_taking_a_role_away_revokes_connections_and_team_membership(admin: Api, core: Core,
                                                                    cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    maria = admin.user("maria", "basic_user")
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/{maria.info['id']}"), {"role": "user"}))
    conn = add_connection(core, maria, cid, "marias")
    team = admin.ok(admin.post(admin.e("/teams"), {"name": "ops", "members": [maria.info["id"]]}), 201)
    got = admin.ok(admin.patch(f"/users/{maria.info['id']}", {"environment_roles": {admin.env: None}}))
    assert got["environment_roles"] == {}
    assert connection_status(core, conn) == "access_revoked"
    assert admin.ok(admin.get(admin.e(f"/teams/{team['id']}")))["members"] == []
    problem(maria.get(admin.e("/credentials")), 404, "environment_not_found")
    # given back, the connection follows (the share is still there)
    admin.ok(admin.patch(f"/users/{maria.info['id']}", {"environment_roles": {"default": "basic_user"}}))
    assert connection_status(core, conn) == "connected"
    audit = admin.ok(admin.get(admin.e("/audit"), params={"action": "user.update"}))
    assert audit is not None


def test_roles_are_changed_and_checked(admin: Api) -> None:
    maria = admin.user("maria", "basic_user")
    lab = admin.ok(admin.post("/environments", {"name": "lab"}), 201)
    got = admin.ok(admin.patch(f"/users/{maria.info['id']}", {"environment_roles": {
        admin.env: "environment_maker", "lab": "basic_user"}}))
    assert got["environment_roles"] == {admin.env: "environment_maker", lab["id"]: "basic_user"}
    problem(admin.patch(f"/users/{maria.info['id']}", {"environment_roles": {"lab": "owner"}}), 422, "unknown_role")
    problem(admin.patch(f"/users/{maria.info['id']}", {"environment_roles": {"nowhere": None}}), 404,
            "environment_not_found")
    problem(admin.patch(f"/users/{maria.info['id']}", {"nickname": "m"}), 422, "unknown_field")
    problem(admin.patch("/users/nobody", {"disabled": True}), 404, "user_not_found")
    made = admin.ok(admin.patch(f"/users/{maria.info['id']}", {"organization_admin": True}))
    assert made["organization_admin"] is True


def test_an_organization_keeps_an_administrator(admin: Api) -> None:
    me = admin.ok(admin.get("/me"))
    problem(admin.patch(f"/users/{me['id']}", {"disabled": True}), 422, "not_on_yourself")
    problem(admin.patch(f"/users/{me['id']}", {"organization_admin": False}), 422, "not_on_yourself")
    problem(admin.delete(f"/users/{me['id']}"), 422, "not_on_yourself")
    boss = admin.ok(admin.post("/users", {"name": "boss", "email": "boss@example.com", "organization_admin": True,
                                          "environment_roles": {admin.env: "system_administrator"}}), 201)
    boss_api = Api(admin.http, boss["token"], admin.env)
    admin.ok(admin.patch(f"/users/{boss['id']}", {"disabled": True}))  # admin stays
    problem(boss_api.get("/me"), 401, "user_disabled")
    admin.ok(admin.patch(f"/users/{boss['id']}", {"disabled": False}))
    assert boss_api.delete(f"/users/{me['id']}").status_code == 204  # boss stays
    problem(admin.get("/me"), 401)
    problem(boss_api.patch(f"/users/{boss['id']}", {"organization_admin": False}), 422, "not_on_yourself")


def test_a_removed_user_keeps_owning_until_reassigned(admin: Api, core: Core, cred_setup: dict[str, Any]) -> None:
    maria, bob = admin.user("maria"), admin.user("bob")
    admin.ok(admin.post(admin.e("/secret-stores/vault/access"), {"principal": maria.info["id"], "allowed": True}))
    cred = maria.credential("Marias login", "robot_user", "robot_pass")
    maria.ok(maria.put(maria.e(f"/credentials/{cred['id']}/shares/{bob.info['id']}"), {"role": "user"}))
    conn = add_connection(core, maria, cred["id"], "marias")
    flow = maria.ok(maria.post(maria.e("/desktop-flows"), {"name": "login", "command": ["true"]}), 201)

    assert admin.delete(f"/users/{maria.info['id']}").status_code == 204
    problem(maria.get("/me"), 401)
    problem(admin.delete(f"/users/{maria.info['id']}"), 404, "user_not_found")
    assert maria.info["id"] not in [u["id"] for u in admin.ok(admin.get("/users"))["items"]]
    removed = {u["id"]: u for u in admin.ok(admin.get("/users", params={"include_removed": True}))["items"]}
    assert removed[maria.info["id"]]["removed_at"] is not None and removed[maria.info["id"]]["disabled"] is True
    assert removed[maria.info["id"]]["environment_roles"] == {}
    assert admin.ok(admin.get(admin.e(f"/credentials/{cred['id']}")))["owner"] == maria.info["id"]
    assert connection_status(core, conn) == "access_revoked"
    again = admin.ok(admin.post("/users", {"name": "maria", "email": "maria@example.com",
                                           "environment_roles": {admin.env: "basic_user"}}), 201)  # email freed
    assert again["id"] != maria.info["id"]

    moved = admin.ok(admin.post(admin.e("/reassign"), {"from_user": maria.info["id"], "to_user": "bob@example.com"}))
    assert moved["to_user"] == bob.info["id"] and moved["from_user"] == maria.info["id"]
    assert moved["moved"]["credentials"] == 1 and moved["moved"]["connections"] == 1
    assert moved["moved"]["desktop_flows"] == 1
    got = bob.ok(bob.get(bob.e(f"/credentials/{cred['id']}")))
    assert got["owner"] == bob.info["id"] and got["my_role"] == "owner"
    assert bob.ok(bob.get(bob.e(f"/desktop-flows/{flow['id']}")))["owner"] == bob.info["id"]
    assert connection_status(core, conn) == "connected"  # bob may use his own credential
    shares = admin.ok(admin.get(admin.e(f"/credentials/{cred['id']}/shares")))["items"]
    assert [(s["principal"], s["role"]) for s in shares] == [(bob.info["id"], "owner")]
    again_moved = admin.ok(admin.post(admin.e("/reassign"), {"from_user": maria.info["id"],
                                                             "to_user": bob.info["id"]}))
    assert set(again_moved["moved"].values()) == {0}
