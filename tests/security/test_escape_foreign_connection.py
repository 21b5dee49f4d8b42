"""Path 2: a maker runs her own desktop flow on another user's connection: directly, through a cloud flow that
names the other user's connection reference, or by binding her reference to the other user's connection."""

from __future__ import annotations

from tests.conftest import problem
from tests.security.conftest import Scene


def _dump_flow(scene: Scene) -> str:
    m = scene.mallory
    body = {"name": "exfiltrate", "command": ["sh", "-c", "echo $CREDFLOW_PASSWORD | base64"]}
    return str(m.ok(m.post(m.e("/desktop-flows"), body), 201)["id"])


def _runs(scene: Scene) -> list[dict]:  # type: ignore[type-arg]
    ad = scene.admin
    return list(ad.ok(ad.get(ad.e("/runs"), params={"limit": 500}))["items"])


def test_a_run_on_another_users_connection_is_refused(scene: Scene) -> None:
    m = scene.mallory
    resp = m.post(m.e("/runs"), {"desktop_flow": _dump_flow(scene), "connection": scene.conn["id"]})
    problem(resp, 403, "connection_not_yours")
    assert _runs(scene) == []
    scene.never_delivered(scene.alice_pc)


def test_a_cloud_flow_naming_another_users_connection_reference_is_refused(scene: Scene) -> None:
    m = scene.mallory
    resp = m.post(m.e("/cloud-flows"), {
        "name": "borrowed", "trigger": {"type": "manual"},
        "actions": [{"type": "run_desktop_flow", "desktop_flow": _dump_flow(scene),
                     "connection_reference": scene.ref["id"]}]})
    problem(resp, 403, "connection_not_yours")
    names = [f["name"] for f in scene.admin.ok(scene.admin.get(scene.admin.e("/cloud-flows")))["items"]]
    assert names == ["nightly"]


def test_her_own_reference_may_not_be_bound_to_another_users_connection(scene: Scene) -> None:
    m = scene.mallory
    problem(m.post(m.e("/connection-references"), {"name": "sneaky", "connection": scene.conn["id"]}), 403,
            "connection_not_yours")
    ref = m.ok(m.post(m.e("/connection-references"), {"name": "sneaky"}), 201)
    problem(m.patch(m.e(f"/connection-references/{ref['id']}"), {"connection": scene.conn["id"]}), 403,
            "connection_not_yours")
    assert m.ok(m.get(m.e(f"/connection-references/{ref['id']}")))["connection"] is None


def test_a_reference_used_by_her_flow_may_not_be_rebound_to_a_connection_she_may_not_use(scene: Scene) -> None:
    """Even an administrator rebinding a reference may not hand a maker's cloud flow someone else's connection."""
    m, ad = scene.mallory, scene.admin
    ref = m.ok(m.post(m.e("/connection-references"), {"name": "hers"}), 201)
    m.ok(m.post(m.e("/cloud-flows"), {"name": "hers", "trigger": {"type": "manual"}, "actions": [
        {"type": "run_desktop_flow", "desktop_flow": _dump_flow(scene), "connection_reference": ref["id"]}]}), 201)
    problem(ad.patch(ad.e(f"/connection-references/{ref['id']}"), {"connection": scene.conn["id"]}), 403,
            "connection_not_yours")


def test_running_another_users_cloud_flow_is_refused_and_queues_nothing(scene: Scene) -> None:
    m = scene.mallory
    problem(m.post(m.e(f"/cloud-flows/{scene.cloud_flow['id']}/run")), 403, "connection_not_yours")
    assert _runs(scene) == []


def test_the_owner_still_runs_her_cloud_flow(scene: Scene) -> None:
    a = scene.alice
    runs = a.ok(a.post(a.e(f"/cloud-flows/{scene.cloud_flow['id']}/run")), 201)["runs"]
    job = scene.alice_pc.claim()
    assert job is not None and job["run_id"] == runs[0]["id"]
    assert scene.alice_pc.opened(job)["password"] == "Pr0duction-Pa55word!"
