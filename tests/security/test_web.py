"""The same refusals through the web pages, which call the same services: a signed-in attacker who forges the
forms gets the rule's refusal, and the victim's objects are unchanged."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.security.conftest import Scene

FIRST, OWN = "mallory-first-password", "mallory-own-password-1"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)


def _signed_in(scene: Scene, client: TestClient) -> TestClient:
    """Mallory in a browser of her own: her first password set by the administrator, then her own."""
    ad, m = scene.admin, scene.mallory
    ad.ok(ad.post(f"/users/{m.info['id']}/password", {"password": FIRST}))
    web = TestClient(client.app, base_url="http://127.0.0.1")
    web.post("/sign-in", data={"csrf_token": _csrf(web.get("/sign-in").text), "email": m.info["email"],
                               "password": FIRST, "next": "/"})
    page = web.get("/account/password")
    web.post("/account/password", data={"csrf_token": _csrf(page.text), "current": FIRST, "new": OWN,
                                        "confirm": OWN})
    return web


def test_forged_forms_on_another_users_objects_are_refused(scene: Scene, client: TestClient) -> None:
    web = _signed_in(scene, client)
    base = f"/env/{scene.admin.env}"
    token = _csrf(web.get(f"{base}/variables").text)
    deleted = web.post(f"{base}/variables/prod_user/delete", data={"csrf_token": token})
    assert deleted.status_code == 403 and "only the owner" in deleted.text
    grabbed = web.post(f"{base}/machine-groups/{scene.group['id']}/machines",
                       data={"csrf_token": token, "machine": scene.mallory_pc.id})
    assert grabbed.status_code == 403 and "only the owner" in grabbed.text
    wrapped = web.post(f"{base}/credentials/new", data={"csrf_token": token, "name": "mine",
                                                        "username_variable": "prod_user",
                                                        "password_variable": "prod_pass"})
    assert wrapped.status_code == 403 and "may not use secrets of store" in wrapped.text
    ad = scene.admin
    assert ad.ok(ad.get(ad.e("/environment-variables/prod_user")))["value"] == "svc-prod@corp.example"
    assert ad.ok(ad.get(ad.e(f"/machine-groups/{scene.group['id']}")))["machines"] == [scene.alice_pc.id]
    assert [c["name"] for c in ad.ok(ad.get(ad.e("/credentials")))["items"]] == ["Production login"]
