"""The Health page over HTTP (the browser test is tests/web/test_health_page.py): sign-in lands on it when
anything the person may see is critical, the navigation's badge counts critical and warning findings, and a maker
sees only her own findings; no secret value on the page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import Api

CANARY = "canary-Pa55word-90ab1e"
FIRST, OWN = "first-password-1", "own-password-123"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)


def _signed_in(admin: Api, client: TestClient, person: Api) -> TestClient:
    admin.ok(admin.post(f"/users/{person.info['id']}/password", {"password": FIRST}))
    web = TestClient(client.app, base_url="http://127.0.0.1")
    web.post("/sign-in", data={"csrf_token": _csrf(web.get("/sign-in").text), "email": person.info["email"],
                               "password": FIRST, "next": "/"})
    page = web.get("/account/password")
    web.post("/account/password", data={"csrf_token": _csrf(page.text), "current": FIRST, "new": OWN,
                                        "confirm": OWN})
    return web


def test_sign_in_lands_on_health_when_anything_is_critical(admin: Api, client: TestClient) -> None:
    admin.store("vault")
    admin.ok(admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"),
                       {"value": CANARY, "expires_at": "2020-01-01T00:00:00Z"}))
    admin.text_var("robot_user", "robot")
    admin.secret_var("robot_pass", "vault", "robot-pw")
    admin.credential("Robot login", "robot_user", "robot_pass")
    env = admin.ok(admin.get(f"/environments/{admin.env}"))["name"]

    olga = _signed_in(admin, client, admin.user("olga", "system_administrator"))
    landed = olga.get("/", follow_redirects=False)
    assert landed.headers["location"] == f"/env/{env}/health"
    page = olga.get(f"/env/{env}/health").text
    assert "Robot login" in page and "Expired" in page and CANARY not in page
    assert re.search(r'<span class="badge"[^>]*>1</span>', page)
    assert re.search(r'<span class="badge"[^>]*>1</span>', olga.get(f"/env/{env}/credentials").text)

    max_ = _signed_in(admin, client, admin.user("max", "environment_maker"))
    assert max_.get("/", follow_redirects=False).headers["location"] == f"/env/{env}/credentials"
    page = max_.get(f"/env/{env}/health").text
    assert "Nothing needs attention." in page and "Robot login" not in page and 'class="badge"' not in page
