"""Every mutating route, tried by another maker on the victim's object: refused with the documented status and
code (403 ``not_owner`` where she can see the object, 404 where she cannot), and the object is unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import problem
from tests.security.conftest import Scene

# (name, method, path under the environment, body, status, code, path whose GET must not change)
ROUTES: list[tuple[str, str, str, Any, int, str, str]] = [
    ("edit a text variable", "PATCH", "/environment-variables/prod_user", {"value": "attacker@evil.example"},
     403, "not_owner", "/environment-variables/prod_user"),
    ("re-point a secret variable", "PATCH", "/environment-variables/prod_pass",
     {"secret_reference": {"store": "vault", "name": "prod-password", "version": "1"}},
     403, "not_owner", "/environment-variables/prod_pass"),
    ("delete a variable", "DELETE", "/environment-variables/prod_user", None, 403, "not_owner",
     "/environment-variables/prod_user"),
    ("edit a credential", "PATCH", "/credentials/{cred}", {"description": "mine"}, 404, "credential_not_found",
     "/credentials/{cred}"),
    ("restrict a credential's flows", "PATCH", "/credentials/{cred}", {"allowed_desktop_flows": []}, 404,
     "credential_not_found", "/credentials/{cred}"),
    ("delete a credential", "DELETE", "/credentials/{cred}", None, 404, "credential_not_found",
     "/credentials/{cred}"),
    ("share a credential with herself", "PUT", "/credentials/{cred}/shares/{mallory}", {"role": "co_owner"}, 404,
     "credential_not_found", "/credentials/{cred}/shares"),
    ("delete a desktop flow", "DELETE", "/desktop-flows/{flow}", None, 403, "not_owner", "/desktop-flows/{flow}"),
    ("delete a connection", "DELETE", "/connections/{conn}", None, 404, "connection_not_found",
     "/connections/{conn}"),
    ("switch a connection to typed values", "PATCH", "/connections/{conn}", {"username": "x", "password": "y"}, 404,
     "connection_not_found", "/connections/{conn}"),
    ("move a connection to her machine", "PATCH", "/connections/{conn}", {"target": {"machine": "{mallory_pc}"}},
     404, "connection_not_found", "/connections/{conn}"),
    ("switch a connection to another credential", "PATCH", "/connections/{conn}", {"credential": "{cred}"}, 404,
     "connection_not_found", "/connections/{conn}"),
    ("change a desktop flow's command", "PATCH", "/desktop-flows/{flow}", {"command": ["sh", "-c", "env"]}, 403,
     "not_owner", "/desktop-flows/{flow}"),
    ("rename a desktop flow", "PATCH", "/desktop-flows/{flow}", {"name": "hers"}, 403, "not_owner",
     "/desktop-flows/{flow}"),
    ("rename a machine group", "PATCH", "/machine-groups/{group}", {"name": "hers"}, 403, "not_owner",
     "/machine-groups/{group}"),
    ("delete a machine group", "DELETE", "/machine-groups/{group}", None, 403, "not_owner",
     "/machine-groups/{group}"),
    ("delete a machine", "DELETE", "/machines/{alice_pc}", None, 403, "not_owner", "/machines/{alice_pc}"),
    ("rename a machine", "PATCH", "/machines/{alice_pc}", {"name": "hers"}, 403, "not_owner", "/machines/{alice_pc}"),
    ("re-point a secret store", "PATCH", "/secret-stores/vault", {"vault_url": "https://vault.attacker.example"}, 403,
     "not_owner", "/secret-stores/vault"),
    ("rename a secret store", "PATCH", "/secret-stores/vault", {"name": "hers"}, 403, "not_owner",
     "/secret-stores/vault"),
    ("delete a secret store", "DELETE", "/secret-stores/vault", None, 403, "not_owner", "/secret-stores/vault"),
    ("rebind a connection reference", "PATCH", "/connection-references/{ref}", {"connection": None}, 403,
     "not_owner", "/connection-references/{ref}"),
    ("delete a connection reference", "DELETE", "/connection-references/{ref}", None, 403, "not_owner",
     "/connection-references/{ref}"),
    ("delete a cloud flow", "DELETE", "/cloud-flows/{cloud_flow}", None, 403, "not_owner",
     "/cloud-flows/{cloud_flow}"),
    ("run a cloud flow", "POST", "/cloud-flows/{cloud_flow}/run", None, 403, "connection_not_yours",
     "/cloud-flows/{cloud_flow}"),
    ("re-version a solution", "PATCH", "/solutions/Prod", {"version": "9.0.0.0"}, 403, "not_owner",
     "/solutions/Prod"),
    ("add to a solution", "POST", "/solutions/Prod/components", {"type": "desktop_flow", "id": "{hers}"}, 403,
     "not_owner", "/solutions/Prod"),
    ("cancel a run", "POST", "/runs/{run}/cancel", None, 404, "run_not_found", "/runs/{run}"),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _unchanging(view: dict[str, Any]) -> dict[str, Any]:
    """A view without what moves with the clock alone (a connection's secret age, in seconds)."""
    return {k: v for k, v in view.items() if k != "secret_age_seconds"}


@pytest.mark.parametrize(("name", "method", "path", "body", "status", "code", "watch"), ROUTES,
                         ids=[r[0].replace(" ", "_") for r in ROUTES])
def test_another_maker_may_not_change_the_object(scene: Scene, name: str, method: str, path: str, body: Any,
                                                 status: int, code: str, watch: str) -> None:
    a, m, ad = scene.alice, scene.mallory, scene.admin
    a.ok(a.post(a.e("/solutions"), {"unique_name": "Prod", "display_name": "Prod", "version": "1.0.0.0"}), 201)
    a.ok(a.post(a.e("/solutions/Prod/components"), {"type": "credential", "id": scene.cred["id"]}))
    run = a.ok(a.post(a.e("/runs"), {"desktop_flow": scene.flow["id"], "connection": scene.conn["id"]}), 201)
    hers = m.ok(m.post(m.e("/desktop-flows"), {"name": "hers", "command": ["true"]}), 201)
    ids = {"cred": scene.cred["id"], "flow": scene.flow["id"], "conn": scene.conn["id"],
           "group": scene.group["id"], "alice_pc": scene.alice_pc.id, "ref": scene.ref["id"],
           "cloud_flow": scene.cloud_flow["id"], "run": run["id"], "mallory": m.info["id"], "hers": hers["id"],
           "mallory_pc": scene.mallory_pc.id}
    watched = ad.e(_fill(watch, ids))
    before = _unchanging(ad.ok(ad.get(watched)))
    resp = m.http.request(method, f"/api/v1{m.e(_fill(path, ids))}", headers={"Authorization": f"Bearer {m.token}"},
                          json=_fill(body, ids))
    problem(resp, status, code)
    assert _unchanging(ad.ok(ad.get(watched))) == before


def test_the_owner_may_change_her_objects(scene: Scene) -> None:
    """The same routes in the owner's hands: the rules above refuse the attacker, not the owner."""
    a = scene.alice
    assert a.ok(a.patch(a.e("/environment-variables/prod_user"), {"value": "svc2@corp.example"}))["value"] == \
        "svc2@corp.example"
    assert a.ok(a.patch(a.e(f"/machine-groups/{scene.group['id']}"), {"name": "pool-2"}))["name"] == "pool-2"
    assert a.ok(a.patch(a.e(f"/connection-references/{scene.ref['id']}"), {"connection": None}))["connection"] is None
    assert a.delete(a.e(f"/cloud-flows/{scene.cloud_flow['id']}")).status_code == 204
    assert a.ok(a.patch(a.e(f"/machines/{scene.alice_pc.id}"), {"name": "alice-pc-2"}))["name"] == "alice-pc-2"
    assert a.ok(a.patch(a.e(f"/desktop-flows/{scene.flow['id']}"), {"command": ["robot"]}))["command"] == ["robot"]
    assert a.ok(a.patch(a.e(f"/connections/{scene.conn['id']}"), {"name": "prod 2"}))["name"] == "prod 2"
