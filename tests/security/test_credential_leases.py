"""Credential leases from the attacker's side: who holds a credential's leases is shown only to those who may see
the credential, and only its owners change how many runs may use it at once."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import problem
from tests.security.conftest import Scene


def _leases(scene: Scene) -> str:
    return scene.alice.e(f"/credentials/{scene.cred['id']}/leases")


@pytest.fixture
def held(scene: Scene) -> str:
    """Alice's credential limited to one run at once, its lease held by a run on her machine: the run's id."""
    a = scene.alice
    a.ok(a.patch(a.e(f"/credentials/{scene.cred['id']}"), {"max_concurrent_runs": 1}))
    run = a.ok(a.post(a.e("/runs"), {"desktop_flow": scene.flow["id"], "connection": scene.conn["id"]}), 201)
    job = scene.alice_pc.claim()
    assert job is not None and job["run_id"] == run["id"]
    return str(run["id"])


def test_another_maker_does_not_see_who_holds_the_leases(scene: Scene, held: str) -> None:
    m = scene.mallory
    body = problem(m.get(_leases(scene)), 404, "credential_not_found")
    assert held not in str(body) and scene.alice_pc.id not in str(body)
    assert [x["run"] for x in scene.alice.ok(scene.alice.get(_leases(scene)))["leases"]] == [held]


def test_another_maker_cannot_lift_or_tighten_the_limit(scene: Scene, held: str) -> None:
    m, a = scene.mallory, scene.alice
    for limit in (None, 5, 1):
        problem(m.patch(m.e(f"/credentials/{scene.cred['id']}"), {"max_concurrent_runs": limit}), 404,
                "credential_not_found")
    assert a.ok(a.get(a.e(f"/credentials/{scene.cred['id']}")))["max_concurrent_runs"] == 1


def test_a_user_share_sees_the_leases_but_cannot_change_the_limit(scene: Scene, held: str) -> None:
    a, m = scene.alice, scene.mallory
    a.ok(a.put(a.e(f"/credentials/{scene.cred['id']}/shares/{m.info['id']}"), {"role": "user"}))
    seen = m.ok(m.get(_leases(scene)))
    assert seen["max_concurrent_runs"] == 1 and [x["run"] for x in seen["leases"]] == [held]
    problem(m.patch(m.e(f"/credentials/{scene.cred['id']}"), {"max_concurrent_runs": 2}), 403, "not_owner")
    assert a.ok(a.get(a.e(f"/credentials/{scene.cred['id']}")))["max_concurrent_runs"] == 1


def test_a_machine_token_and_no_token_are_refused(scene: Scene, held: str) -> None:
    problem(scene.mallory_pc.api.get(_leases(scene)), 403, "machine_token_not_allowed")
    problem(scene.alice_pc.api.get(_leases(scene)), 403, "machine_token_not_allowed")  # even the holder's
    http = scene.alice.http
    problem(http.get(f"/api/v1{_leases(scene)}"), 401)
    problem(http.get(f"/api/v1{_leases(scene)}", headers={"Authorization": "Bearer cfu_not-a-real-token"}), 401)


def test_the_leases_of_another_environment_are_not_found(scene: Scene, held: str) -> None:
    ad = scene.admin
    other = ad.ok(ad.post("/environments", {"name": "elsewhere"}), 201)
    problem(ad.get(f"/environments/{other['id']}/credentials/{scene.cred['id']}/leases"), 404,
            "credential_not_found")


def test_an_unknown_credential_is_not_found(scene: Scene) -> None:
    resp: httpx.Response = scene.mallory.get(scene.mallory.e("/credentials/0123456789abcdef0123456789abcdef/leases"))
    problem(resp, 404, "credential_not_found")
