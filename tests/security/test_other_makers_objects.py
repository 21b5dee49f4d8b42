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
    ("rename a machine group", "PATCH", "/machine-groups/{group}", {"name": "hers"}, 403, "not_owner",
     "/machine-groups/{group}"),
    ("delete a machine group", "DELETE", "/machine-groups/{group}", None, 403, "not_owner",
     "/machine-groups/{group}"),
    ("delete a machine", "DELETE", "/machines/{alice_pc}", None, 403, "not_owner", "/machines/{alice_pc}"),
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
           "cloud_flow": scene.cloud_flow["id"], "run": run["id"], "mallory": m.info["id"], "hers": hers["id"]}
    watched = ad.e(_fill(watch, ids))
    before = ad.ok(ad.get(watched))
    resp = m.http.request(method, f"/api/v1{m.e(_fill(path, ids))}", headers={"Authorization": f"Bearer {m.token}"},
                          json=_fill(body, ids))
    problem(resp, status, code)
    assert ad.ok(ad.get(watched)) == before


def test_the_owner_may_change_her_objects(scene: Scene) -> None:
    """The same routes in the owner's hands: the rules above refuse the attacker, not the owner."""
    a = scene.alice
    assert a.ok(a.patch(a.e("/environment-variables/prod_user"), {"value": "svc2@corp.example"}))["value"] == \
        "svc2@corp.example"
    assert a.ok(a.patch(a.e(f"/machine-groups/{scene.group['id']}"), {"name": "pool-2"}))["name"] == "pool-2"
    assert a.ok(a.patch(a.e(f"/connection-references/{scene.ref['id']}"), {"connection": None}))["connection"] is None
    assert a.delete(a.e(f"/cloud-flows/{scene.cloud_flow['id']}")).status_code == 204
