"""The credential's web page says whether a new password is verified first, and how the last verification went
(over HTTP, signed in as a person, no browser needed)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import Api
from tests.rotation.conftest import connect, register_machine, wait_for

PASSWORD = "admin-password-for-pages"


def _signed_in(client: TestClient, admin: Api) -> None:
    admin.ok(admin.post(f"/users/{admin.ok(admin.get('/me'))['id']}/password", {"password": PASSWORD}))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text)
    assert token is not None
    client.post("/sign-in", data={"csrf_token": token.group(1), "email": "admin@localhost", "password": PASSWORD,
                                  "next": "/"}, follow_redirects=False)


def _verification_text(client: TestClient, cred: str) -> str:
    page = client.get(f"/env/default/credentials/{cred}")
    assert page.status_code == 200
    box = re.search(r'<dd id="verification">(.*?)</dd>', page.text, re.S)
    assert box is not None
    return " ".join(re.sub(r"<[^>]+>", "", box.group(1)).split())


def test_the_credential_page_shows_the_verification_and_its_state(
        client: TestClient, admin: Api, cred_setup: dict[str, Any], flow: str) -> None:
    cred = cred_setup["credential"]["id"]
    machine = register_machine(admin)
    conn = connect(admin, machine, cred, "verifier")["id"]
    _signed_in(client, admin)
    assert _verification_text(client, cred) == "none: a new password reaches every connection at once"
    admin.ok(admin.patch(admin.e(f"/credentials/{cred}"), {"verification": {"desktop_flow": flow, "connection": conn}}))
    assert "Not run yet. Connections are on version 1." in _verification_text(client, cred)
    admin.secret("vault", "robot-password", "N3w-Pa55word!")
    job = wait_for(machine.claim)
    assert job["credential"]["version"] == "2"
    admin.ok(machine.api.post(f"/machines/me/jobs/{job['run_id']}/result", {"exit_code": 1, "log": "refused"}))
    shown = _verification_text(client, cred)
    assert f"desktop flow {flow} on connection {conn}" in shown
    assert "failed for version 2" in shown and f"run {job['run_id']} exited 1" in shown
    assert "Connections are on version 1." in shown
