"""A credential's verification, attacked through the real API: another maker sets one on the victim's credential
or runs it, the owner is tricked into naming someone else's connection or a flow the credential does not allow, a
machine or no token calls the routes. Each is refused with a problem and the credential is unchanged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Api, problem
from tests.security.conftest import Scene


def _spec(flow: str, conn: str) -> dict[str, Any]:
    return {"verification": {"desktop_flow": flow, "connection": conn}}


def _cred(scene: Scene) -> dict[str, Any]:
    ad = scene.admin
    return ad.ok(ad.get(ad.e(f"/credentials/{scene.cred['id']}")))  # type: ignore[no-any-return]


def _share(scene: Scene, role: str) -> None:
    a = scene.alice
    a.ok(a.put(a.e(f"/credentials/{scene.cred['id']}/shares/{scene.mallory.info['id']}"), {"role": role}))


def _mallory_connection(scene: Scene) -> dict[str, Any]:
    m = scene.mallory
    return m.ok(m.post(m.e("/connections"), {"name": "mallory's", "target": {"machine": scene.mallory_pc.id},  # type: ignore[no-any-return]
                                             "credential": scene.cred["id"]}), 201)


@pytest.mark.parametrize("share", [None, "user_share"])
def test_another_maker_may_not_set_or_run_the_verification(scene: Scene, share: str | None) -> None:
    if share:
        _share(scene, share)
    m, before = scene.mallory, _cred(scene)
    status, code = (403, "not_owner") if share else (404, "credential_not_found")
    mine = _mallory_connection(scene) if share else scene.conn
    problem(m.patch(m.e(f"/credentials/{scene.cred['id']}"), _spec(scene.flow["id"], mine["id"])), status, code)
    problem(m.patch(m.e(f"/credentials/{scene.cred['id']}"), {"verification": None}), status, code)
    problem(m.post(m.e(f"/credentials/{scene.cred['id']}/verify")), status, code)
    assert _cred(scene) == before and before["verification"] is None


def test_the_owner_may_not_name_a_connection_of_someone_else_or_of_another_credential(scene: Scene) -> None:
    _share(scene, "user_share")
    hers = _mallory_connection(scene)
    a, before = scene.alice, _cred(scene)
    cred = scene.cred["id"]
    problem(a.patch(a.e(f"/credentials/{cred}"), _spec(scene.flow["id"], hers["id"])), 403, "connection_not_yours")
    a.text_var("other_user", "other@corp.example")
    a.secret_var("other_pass", "vault", "prod-password")
    other = a.credential("Other login", "other_user", "other_pass")
    elsewhere = a.ok(a.post(a.e("/connections"), {"name": "other on alice-pc", "target": {"machine": scene.alice_pc.id},
                                                  "credential": other["id"]}), 201)
    problem(a.patch(a.e(f"/credentials/{cred}"), _spec(scene.flow["id"], elsewhere["id"])), 422,
            "verification_connection_mismatch")
    problem(a.patch(a.e(f"/credentials/{cred}"), _spec(scene.flow["id"], "no-such-connection")), 404,
            "connection_not_found")
    problem(a.patch(a.e(f"/credentials/{cred}"), {"verification": {"desktop_flow": scene.flow["id"]}}), 422)
    assert _cred(scene) == before


def test_the_verification_flow_must_be_allowed_by_the_credential(scene: Scene) -> None:
    a, cred = scene.alice, scene.cred["id"]
    other = a.ok(a.post(a.e("/desktop-flows"), {"name": "print-env", "command": ["env"]}), 201)
    a.ok(a.patch(a.e(f"/credentials/{cred}"), {"allowed_desktop_flows": [scene.flow["id"]]}))
    before = _cred(scene)
    problem(a.patch(a.e(f"/credentials/{cred}"), _spec(other["id"], scene.conn["id"])), 403,
            "desktop_flow_not_allowed")
    assert _cred(scene) == before
    made = a.ok(a.patch(a.e(f"/credentials/{cred}"), _spec(scene.flow["id"], scene.conn["id"])))["verification"]
    assert (made["desktop_flow"], made["connection"]) == (scene.flow["id"], scene.conn["id"])  # the owner may


def test_a_machine_or_no_token_may_not_set_or_run_the_verification(scene: Scene, admin: Api) -> None:
    before, cred = _cred(scene), scene.cred["id"]
    path = f"/api/v1{admin.e(f'/credentials/{cred}')}"
    for headers, status in (({"Authorization": f"Bearer {scene.alice_pc.api.token}"}, 403), ({}, 401)):
        http: httpx.Client = admin.http  # type: ignore[assignment]
        problem(http.post(f"{path}/verify", headers=headers), status)
        problem(http.patch(path, headers=headers, json=_spec(scene.flow["id"], scene.conn["id"])), status)
    assert _cred(scene) == before
