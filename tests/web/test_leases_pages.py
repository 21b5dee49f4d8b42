"""Credential leases on the pages, over HTTP (no browser needed): the credential's page shows how many runs may use
it at once and who holds its leases, its edit form changes the limit, and the runs list says which runs wait for a
lease."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Api
from tests.machines.conftest import connection, desktop_flow, queue, register

PASSWORD = "admin-password-for-lease-pages"


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _signed_in(admin: Api, client: TestClient) -> TestClient:
    admin.ok(admin.post(f"/users/{admin.ok(admin.get('/me'))['id']}/password", {"password": PASSWORD}))
    web = TestClient(client.app)
    signed = web.post("/sign-in", data={"csrf_token": _csrf(web.get("/sign-in").text), "email": "admin@localhost",
                                        "password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    return web


def test_the_credential_page_shows_the_limit_and_the_leases_and_the_runs_list_who_waits(
        admin: Api, client: TestClient, cred_setup: dict[str, Any]) -> None:
    cred = cred_setup["credential"]["id"]
    admin.ok(admin.patch(admin.e(f"/credentials/{cred}"), {"max_concurrent_runs": 1}))
    a, b = register(admin, "pc-a"), register(admin, "pc-b")
    flow = desktop_flow(admin)["id"]
    first = queue(admin, flow, connection(admin, "on a", {"machine": a.id}, credential=cred)["id"])["id"]
    second = queue(admin, flow, connection(admin, "on b", {"machine": b.id}, credential=cred)["id"])["id"]
    assert (a.job() or {}).get("run_id") == first
    assert b.job() is None

    web = _signed_in(admin, client)
    base = f"/env/{admin.env}"
    page = web.get(f"{base}/credentials/{cred}")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Runs at once at most 1: more runs wait for a lease" in text
    assert "1 held of 1; 1 run waiting for one." in text
    leases = _text(page.text.split('id="leases"')[1].split("</table>")[0])
    assert first in leases and "pc-a" in leases and second not in leases

    listed = _text(web.get(f"{base}/runs").text)
    assert "queued Waiting for credential lease" in listed
    assert "Queued: waiting for credential lease" in _text(web.get(f"{base}/runs/{second}").text)
    assert "Queued: waiting for credential lease" not in _text(web.get(f"{base}/runs/{first}").text)

    form = web.get(f"{base}/credentials/{cred}/edit").text
    assert 'name="max_concurrent_runs" type="number" value="1"' in form
    refused = web.post(f"{base}/credentials/{cred}/edit", data={
        "csrf_token": _csrf(form), "name": "Robot login", "description": "", "max_concurrent_runs": "0"})
    assert refused.status_code == 422 and "max_concurrent_runs is null (no limit) or a whole number" in \
        html.unescape(refused.text)
    assert admin.ok(admin.get(admin.e(f"/credentials/{cred}")))["max_concurrent_runs"] == 1
    saved = web.post(f"{base}/credentials/{cred}/edit", data={
        "csrf_token": _csrf(form), "name": "Robot login", "description": "", "max_concurrent_runs": "2"})
    assert saved.status_code == 200 and "Runs at once at most 2" in _text(saved.text)
    assert (b.job() or {}).get("run_id") == second  # the higher limit let the waiting run go
    cleared = web.post(f"{base}/credentials/{cred}/edit", data={
        "csrf_token": _csrf(form), "name": "Robot login", "description": "", "max_concurrent_runs": ""})
    assert "Runs at once no limit" in _text(cleared.text)
    assert "2 held; 0 runs waiting for one." in _text(cleared.text)
