"""Tokens under attack: nobody lists or revokes the tokens of a user they may not manage, a token id of someone
else's is not found under one's own, and a token that was revoked, expired or never existed opens nothing."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, problem


def _lab(admin: Api) -> tuple[Api, dict[str, Any]]:
    lab = admin.ok(admin.post("/environments", {"name": "lab"}), 201)
    return admin.user("labadmin", "system_administrator", env=lab["id"]), lab


def _token_ids(api: Api, user_id: str | None = None) -> list[str]:
    path = f"/users/{user_id}/tokens" if user_id else "/me/tokens"
    return [t["id"] for t in api.ok(api.get(path))["items"]]


def test_an_environment_administrator_may_not_touch_the_tokens_of_an_organization_administrator(admin: Api) -> None:
    boss = admin.ok(admin.get("/me"))
    sysadmin = admin.user("sysadmin", "system_administrator")
    problem(sysadmin.get(f"/users/{boss['id']}/tokens"), 403, "not_your_user")
    for token_id in _token_ids(admin):
        problem(sysadmin.delete(f"/users/{boss['id']}/tokens/{token_id}"), 403, "not_your_user")
        problem(sysadmin.delete(f"/me/tokens/{token_id}"), 404, "token_not_found")  # not hers
    assert admin.get("/me").status_code == 200


def test_an_environment_administrator_may_not_touch_the_tokens_of_a_user_with_roles_elsewhere(admin: Api) -> None:
    lab_admin, lab = _lab(admin)
    both = admin.ok(admin.post("/users", {"name": "both", "email": "both@example.com", "environment_roles": {
        lab["id"]: "environment_maker", admin.env: "environment_maker"}}), 201)
    problem(lab_admin.get(f"/users/{both['id']}/tokens"), 403, "not_your_user")
    victim = Api(admin.http, both["token"], admin.env)
    for token_id in _token_ids(victim):
        problem(lab_admin.delete(f"/users/{both['id']}/tokens/{token_id}"), 403, "not_your_user")
    assert victim.get("/me").status_code == 200
    # ... but manages those of the users of its own environments only
    mine = lab_admin.user("labmaker", "environment_maker", env=lab["id"])
    assert len(_token_ids(lab_admin, mine.info["id"])) == 1


def test_a_maker_sees_no_other_users_tokens_and_an_outsider_not_even_the_user(admin: Api) -> None:
    maria, bob = admin.user("maria"), admin.user("bob")
    problem(maria.get(f"/users/{bob.info['id']}/tokens"), 403, "not_your_user")
    for token_id in _token_ids(bob):
        problem(maria.delete(f"/users/{bob.info['id']}/tokens/{token_id}"), 403, "not_your_user")
        problem(maria.delete(f"/me/tokens/{token_id}"), 404, "token_not_found")
    lab_admin, _ = _lab(admin)
    problem(lab_admin.get(f"/users/{bob.info['id']}/tokens"), 404, "user_not_found")  # shares no environment
    assert bob.get("/me").status_code == 200


def test_a_revoked_token_counts_as_a_failed_sign_in(admin: Api) -> None:
    made = admin.ok(admin.post("/me/tokens", {"name": "leaked"}), 201)
    leaked = Api(admin.http, made["token"], admin.env)
    assert admin.delete(f"/me/tokens/{made['id']}").status_code == 204
    for path in ("/me", "/environments", "/me/tokens", f"/users/{admin.ok(admin.get('/me'))['id']}/tokens"):
        problem(leaked.get(path), 401)
    problem(leaked.post("/me/tokens", {"name": "new"}), 401)  # a revoked token makes no new one
    problem(Api(admin.http, made["token"][:-1] + "x", admin.env).get("/me"), 401)


def test_a_machine_token_is_no_user_token_and_a_user_token_rotates_no_machine(admin: Api) -> None:
    problem(admin.post("/machines/me/token"), 403, "user_token_not_allowed")
    problem(Api(admin.http, "cfm_not-a-machine", admin.env).post("/machines/me/token"), 401)


def test_another_maker_may_not_enable_or_disable_a_machine_that_is_not_hers(admin: Api) -> None:
    from tests.conftest import new_machine

    alice, mallory = admin.user("alice"), admin.user("mallory")
    _, machine_id, _ = new_machine(alice, "alice-pc")
    problem(mallory.patch(mallory.e(f"/machines/{machine_id}"), {"disabled": True}), 403, "not_owner")
    assert alice.ok(alice.patch(alice.e(f"/machines/{machine_id}"), {"disabled": True}))["disabled"] is True
    problem(mallory.patch(mallory.e(f"/machines/{machine_id}"), {"disabled": False}), 403, "not_owner")
    assert admin.ok(admin.get(admin.e(f"/machines/{machine_id}")))["disabled"] is True
