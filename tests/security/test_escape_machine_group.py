"""Path 3: a maker rewrites another user's machine group to her own machine, so that the owner's next run is
sealed to her key. Only the group's owner (or an administrator) changes it, and only with machines they own."""

from __future__ import annotations

from tests.conftest import problem
from tests.security.conftest import PASSWORD, Scene


def _members(scene: Scene) -> list[str]:
    a = scene.alice
    return list(a.ok(a.get(a.e(f"/machine-groups/{scene.group['id']}")))["machines"])


def test_a_maker_may_not_rewrite_another_users_machine_group(scene: Scene) -> None:
    m = scene.mallory
    problem(m.patch(m.e(f"/machine-groups/{scene.group['id']}"), {"machines": [scene.mallory_pc.id]}), 403,
            "not_owner")
    problem(m.patch(m.e(f"/machine-groups/{scene.group['id']}"), {"name": "renamed"}), 403, "not_owner")
    problem(m.delete(m.e(f"/machine-groups/{scene.group['id']}")), 403, "not_owner")
    assert _members(scene) == [scene.alice_pc.id]


def test_the_owners_next_group_run_reaches_only_her_machine(scene: Scene) -> None:
    m, a = scene.mallory, scene.alice
    m.patch(m.e(f"/machine-groups/{scene.group['id']}"), {"machines": [scene.mallory_pc.id]})
    run = a.ok(a.post(a.e("/runs"), {"desktop_flow": scene.flow["id"], "connection": scene.group_conn["id"]}), 201)
    assert scene.mallory_pc.claim() is None
    job = scene.alice_pc.claim()
    assert job is not None and job["run_id"] == run["id"]
    assert scene.alice_pc.opened(job)["password"] == PASSWORD


def test_a_group_takes_only_machines_the_caller_owns(scene: Scene) -> None:
    """Nor may the owner of a group pull someone else's machine into it, nor a maker add hers to a new group."""
    m, a = scene.mallory, scene.alice
    problem(m.post(m.e("/machine-groups"), {"name": "grab", "machines": [scene.alice_pc.id]}), 403,
            "machine_not_yours")
    problem(a.patch(a.e(f"/machine-groups/{scene.group['id']}"),
                    {"machines": [scene.alice_pc.id, scene.mallory_pc.id]}), 403, "machine_not_yours")
    assert _members(scene) == [scene.alice_pc.id]


def test_an_administrator_may_change_any_group(scene: Scene) -> None:
    ad = scene.admin
    got = ad.ok(ad.patch(ad.e(f"/machine-groups/{scene.group['id']}"),
                         {"machines": [scene.alice_pc.id, scene.mallory_pc.id]}))
    assert sorted(got["machines"]) == sorted([scene.alice_pc.id, scene.mallory_pc.id])
