"""Switching a connection to a credential is binding it: a maker may not switch her own connection to a
credential she may not use, and the switch changes nothing she could run on."""

from __future__ import annotations

from tests.conftest import problem
from tests.security.conftest import PASSWORD, Scene


def test_a_maker_may_not_switch_her_connection_to_a_credential_she_may_not_use(scene: Scene) -> None:
    m = scene.mallory
    hers = m.ok(m.post(m.e("/connections"), {"name": "hers", "target": {"machine": scene.mallory_pc.id},
                                              "username": "me", "password": "mine"}), 201)
    problem(m.patch(m.e(f"/connections/{hers['id']}"), {"credential": scene.cred["id"]}), 404, "credential_not_found")
    problem(m.patch(m.e(f"/connections/{hers['id']}"), {"credential": "Production login"}), 404,
            "credential_not_found")
    assert m.ok(m.get(m.e(f"/connections/{hers['id']}"))) == hers
    flow = m.ok(m.post(m.e("/desktop-flows"), {"name": "dump", "command": ["sh", "-c", "env"]}), 201)
    m.ok(m.post(m.e("/runs"), {"desktop_flow": flow["id"], "connection": hers["id"]}), 201)
    scene.never_delivered(scene.mallory_pc)


def test_a_switch_made_while_shared_stops_delivering_once_the_share_is_revoked(scene: Scene) -> None:
    a, m = scene.alice, scene.mallory
    hers = m.ok(m.post(m.e("/connections"), {"name": "hers", "target": {"machine": scene.mallory_pc.id},
                                              "username": "me", "password": "mine"}), 201)
    a.ok(a.put(a.e(f"/credentials/{scene.cred['id']}/shares/{m.info['id']}"), {"role": "user"}))
    assert m.ok(m.patch(m.e(f"/connections/{hers['id']}"), {"credential": scene.cred["id"]}))["status"] == "connected"
    assert a.delete(a.e(f"/credentials/{scene.cred['id']}/shares/{m.info['id']}")).status_code == 204
    assert m.ok(m.patch(m.e(f"/connections/{hers['id']}"), {"name": "renamed"}))["status"] == "access_revoked"
    problem(m.patch(m.e(f"/connections/{hers['id']}"), {"credential": scene.cred["id"]}), 404, "credential_not_found")
    flow = m.ok(m.post(m.e("/desktop-flows"), {"name": "dump", "command": ["sh", "-c", "env"]}), 201)
    run = m.ok(m.post(m.e("/runs"), {"desktop_flow": flow["id"], "connection": hers["id"]}), 201)
    scene.never_delivered(scene.mallory_pc)
    assert scene.run_status(m, run["id"])["reason"] == "access_revoked"
    assert PASSWORD not in str(m.ok(m.get(m.e(f"/runs/{run['id']}"))))
