"""Users who leave, under attack: an administrator of one environment may not disable, change, remove or take over
the users beyond it, nor reassign what others own elsewhere; a maker reassigns nothing; a user who was disabled or
removed gets no password delivered, whatever was queued before."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, problem
from tests.security.conftest import PASSWORD, Scene


def _lab(admin: Api) -> tuple[Api, dict[str, Any]]:
    lab = admin.ok(admin.post("/environments", {"name": "lab"}), 201)
    return admin.user("labadmin", "system_administrator", env=lab["id"]), lab


def test_an_environment_administrator_may_not_disable_or_remove_an_organization_administrator(admin: Api) -> None:
    boss = admin.ok(admin.get("/me"))
    sysadmin = admin.user("sysadmin", "system_administrator")
    problem(sysadmin.patch(f"/users/{boss['id']}", {"disabled": True}), 403, "not_your_user")
    problem(sysadmin.patch(f"/users/{boss['id']}", {"environment_roles": {admin.env: None}}), 403, "not_your_user")
    problem(sysadmin.delete(f"/users/{boss['id']}"), 403, "not_your_user")
    assert admin.ok(admin.get("/me"))["environment_roles"] == {admin.env: "system_administrator"}


def test_an_environment_administrator_may_not_touch_users_with_roles_elsewhere(admin: Api) -> None:
    lab_admin, lab = _lab(admin)
    both = admin.ok(admin.post("/users", {"name": "both", "email": "both@example.com", "environment_roles": {
        lab["id"]: "environment_maker", admin.env: "environment_maker"}}), 201)
    for body in ({"disabled": True}, {"environment_roles": {lab["id"]: None}},
                 {"environment_roles": {lab["id"]: "system_administrator"}}):
        problem(lab_admin.patch(f"/users/{both['id']}", body), 403, "not_your_user")
    problem(lab_admin.delete(f"/users/{both['id']}"), 403, "not_your_user")
    victim = Api(admin.http, both["token"], admin.env)
    assert victim.ok(victim.get("/me"))["environment_roles"] == {lab["id"]: "environment_maker",
                                                                 admin.env: "environment_maker"}


def test_an_environment_administrator_grants_no_role_elsewhere_and_makes_no_organization_admin(admin: Api) -> None:
    lab_admin, lab = _lab(admin)
    mine = lab_admin.user("labmaker", "environment_maker", env=lab["id"])
    # a role in an environment it has no part in: not even found
    problem(lab_admin.patch(f"/users/{mine.info['id']}", {"environment_roles": {admin.env: "basic_user"}}), 404,
            "environment_not_found")
    problem(lab_admin.patch(f"/users/{mine.info['id']}", {"organization_admin": True}), 403,
            "not_organization_admin")
    problem(lab_admin.patch(f"/users/{lab_admin.info['id']}", {"organization_admin": True}), 403,
            "not_organization_admin")
    # one where it is only a maker: refused
    admin.ok(admin.patch(f"/users/{lab_admin.info['id']}", {"environment_roles": {admin.env: "environment_maker"}}))
    problem(lab_admin.patch(f"/users/{mine.info['id']}", {"environment_roles": {admin.env: "basic_user"}}), 403)
    got = admin.ok(admin.get(f"/users/{mine.info['id']}"))
    assert got["environment_roles"] == {lab["id"]: "environment_maker"} and got["organization_admin"] is False
    # ... and within its own environments it does what it may
    assert lab_admin.patch(f"/users/{mine.info['id']}", {"disabled": True}).status_code == 200
    assert lab_admin.delete(f"/users/{mine.info['id']}").status_code == 204


def test_a_maker_changes_no_user_and_reassigns_nothing(scene: Scene) -> None:
    mallory, alice = scene.mallory, scene.alice
    problem(mallory.patch(f"/users/{alice.info['id']}", {"disabled": True}), 403, "not_your_user")
    problem(mallory.delete(f"/users/{alice.info['id']}"), 403, "not_your_user")
    problem(mallory.patch(f"/users/{mallory.info['id']}", {"environment_roles": {mallory.env:
                                                                                "system_administrator"}}), 403)
    problem(mallory.post(mallory.e("/reassign"), {"from_user": alice.info["id"], "to_user": mallory.info["id"]}),
            403)
    assert scene.admin.ok(scene.admin.get(scene.admin.e(f"/credentials/{scene.cred['id']}")))["owner"] == \
        alice.info["id"]


def test_an_environment_administrator_reassigns_only_in_its_environment(scene: Scene) -> None:
    lab_admin, lab = _lab(scene.admin)
    body = {"from_user": scene.alice.info["id"], "to_user": lab_admin.info["id"]}
    problem(lab_admin.post(f"/environments/{scene.admin.env}/reassign", body), 404, "environment_not_found")
    problem(lab_admin.post(f"/environments/{lab['id']}/reassign", {**body, "to_user": "nobody@example.com"}), 404,
            "user_not_found")
    # nothing of alice's is in the lab: nothing moves
    moved = lab_admin.ok(lab_admin.post(f"/environments/{lab['id']}/reassign", body))
    assert set(moved["moved"].values()) == {0}
    # the new owner must hold a role in the environment
    problem(scene.admin.post(scene.admin.e("/reassign"), {"from_user": scene.alice.info["id"],
                                                          "to_user": lab_admin.info["id"]}), 422,
            "not_in_environment")
    assert scene.admin.ok(scene.admin.get(scene.admin.e(f"/credentials/{scene.cred['id']}")))["owner"] == \
        scene.alice.info["id"]


def test_a_disabled_user_gets_no_password_delivered_for_a_run_queued_before(scene: Scene) -> None:
    run = scene.alice.ok(scene.alice.post(scene.alice.e("/runs"), {"desktop_flow": scene.flow["id"],
                                                                   "connection": scene.conn["id"]}), 201)
    scene.admin.ok(scene.admin.patch(f"/users/{scene.alice.info['id']}", {"disabled": True}))
    assert scene.alice_pc.claim() is None
    got = scene.run_status(scene.admin, run["id"])
    assert got["status"] == "failed" and "user_disabled" in (got.get("log") or "") + str(got.get("reason"))
    scene.never_delivered(scene.alice_pc)


def test_a_removed_user_gets_no_password_delivered_and_no_one_signs_in_as_it(scene: Scene) -> None:
    run = scene.alice.ok(scene.alice.post(scene.alice.e("/runs"), {"desktop_flow": scene.flow["id"],
                                                                   "connection": scene.conn["id"]}), 201)
    assert scene.admin.delete(f"/users/{scene.alice.info['id']}").status_code == 204
    problem(scene.alice.get("/me"), 401)
    assert scene.alice_pc.claim() is None
    assert scene.run_status(scene.admin, run["id"])["status"] == "failed"
    scene.never_delivered(scene.alice_pc)
    assert PASSWORD not in str(scene.admin.ok(scene.admin.get(scene.admin.e("/audit"))))
