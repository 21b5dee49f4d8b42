"""The use chain, re-checked when a machine claims: whatever changed since a run was queued, a broken link fails
the run with a reason that names it, and nothing is sealed to the machine."""

from __future__ import annotations

from tests.conftest import Api, problem
from tests.security.conftest import PASSWORD, Scene


def _shared_user_connection(scene: Scene) -> tuple[Api, str, str]:
    """Bob, a basic user the credential is shared with, his connection on Mallory's machine, and a run queued."""
    a, ad = scene.alice, scene.admin
    bob = ad.user("bob", "basic_user")
    a.ok(a.put(a.e(f"/credentials/{scene.cred['id']}/shares/{bob.info['id']}"), {"role": "user"}))
    conn = bob.ok(bob.post(bob.e("/connections"), {"name": "bob's", "target": {"machine": scene.mallory_pc.id},
                                                   "credential": scene.cred["id"]}), 201)
    run = bob.ok(bob.post(bob.e("/runs"), {"desktop_flow": scene.flow["id"], "connection": conn["id"]}), 201)
    return bob, conn["id"], run["id"]


def test_a_share_revoked_after_the_run_was_queued_fails_the_run_unsealed(scene: Scene) -> None:
    bob, _, run_id = _shared_user_connection(scene)
    a = scene.alice
    assert a.delete(a.e(f"/credentials/{scene.cred['id']}/shares/{bob.info['id']}")).status_code == 204
    scene.never_delivered(scene.mallory_pc)
    got = scene.run_status(bob, run_id)
    assert got["status"] == "failed" and "access_revoked" in got["log"]


def test_a_flow_the_credential_stopped_allowing_fails_at_claim(scene: Scene) -> None:
    bob, _, run_id = _shared_user_connection(scene)
    a = scene.alice
    other = a.ok(a.post(a.e("/desktop-flows"), {"name": "other", "command": ["true"]}), 201)
    got = a.ok(a.patch(a.e(f"/credentials/{scene.cred['id']}"), {"allowed_desktop_flows": [other["id"]]}))
    assert got["allowed_desktop_flows"] == [other["id"]]
    scene.never_delivered(scene.mallory_pc)
    failed = scene.run_status(bob, run_id)
    assert failed["status"] == "failed" and "desktop_flow_not_allowed" in failed["log"]


def test_a_credential_restricted_to_some_flows_refuses_the_others_when_queued(scene: Scene) -> None:
    a = scene.alice
    a.ok(a.patch(a.e(f"/credentials/{scene.cred['id']}"), {"allowed_desktop_flows": [scene.flow["name"]]}))
    dump = a.ok(a.post(a.e("/desktop-flows"), {"name": "dump", "command": ["env"]}), 201)
    problem(a.post(a.e("/runs"), {"desktop_flow": dump["id"], "connection": scene.conn["id"]}), 403,
            "desktop_flow_not_allowed")
    run = a.ok(a.post(a.e("/runs"), {"desktop_flow": scene.flow["id"], "connection": scene.conn["id"]}), 201)
    job = scene.alice_pc.claim()
    assert job is not None and job["run_id"] == run["id"]
    assert scene.alice_pc.opened(job)["password"] == PASSWORD
    back = a.ok(a.patch(a.e(f"/credentials/{scene.cred['id']}"), {"allowed_desktop_flows": None}))
    assert back["allowed_desktop_flows"] is None


def test_only_owners_and_co_owners_restrict_the_flows(scene: Scene) -> None:
    bob, _, _ = _shared_user_connection(scene)
    problem(bob.patch(bob.e(f"/credentials/{scene.cred['id']}"), {"allowed_desktop_flows": []}), 403, "not_owner")
    problem(scene.alice.patch(scene.alice.e(f"/credentials/{scene.cred['id']}"),
                              {"allowed_desktop_flows": ["no-such-flow"]}), 404, "desktop_flow_not_found")
