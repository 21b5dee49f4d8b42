"""Two ``credflow serve`` processes sharing one PostgreSQL database: a user disabled on one is refused by the other
within a second (token and session), a sign-out on one is seen by the other, and a signed-out cookie stays dead
after a restart while a live one survives it."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import pg_schema_url
from tests.e2e.server import running_server

pytestmark = pytest.mark.postgres

TOKEN = "cfu_replica-admin-token-0123456789abcdefghij"
PASSWORD = "Replica-Pa55word-for-pages"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _sign_in(url: str, email: str, password: str) -> str:
    """The session cookie of a fresh sign-in on the server at ``url``."""
    with httpx.Client(base_url=url) as browser:
        token = _csrf(browser.get("/sign-in").text)
        resp = browser.post("/sign-in", data={"csrf_token": token, "email": email, "password": password,
                                              "next": "/"})
        assert resp.status_code == 303, resp.text
        cookie = browser.cookies.get("credflow_session")
        assert cookie
        return cookie


def _page(url: str, cookie: str) -> int:
    """200 with a live session, 303 (to sign in) without."""
    resp = httpx.get(f"{url}/account/password", cookies={"credflow_session": cookie})
    return 303 if resp.status_code == 303 and resp.headers["location"].startswith("/sign-in") else resp.status_code


def _within_a_second(check: Callable[[], bool]) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < 1.0, "the other server still accepts it after a second"
        time.sleep(0.02)
    return time.monotonic() - start


def test_disable_and_sign_out_reach_every_replica_and_survive_a_restart(pg_available: bool, tmp_path: Path) -> None:
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    url_gen = pg_schema_url()
    database_url = next(url_gen)
    key = base64.b64encode(os.urandom(32)).decode()
    env = {"CREDFLOW_DATABASE_URL": database_url, "CREDFLOW_BOOTSTRAP_TOKEN": TOKEN, "CREDFLOW_MASTER_KEY": key,
           "CREDFLOW_RUN_WORKERS": "false"}
    try:
        with running_server(tmp_path / "a", env, clean=True) as (a, _), \
                running_server(tmp_path / "b", env, clean=True) as (b, _):
            admin = httpx.Client(base_url=f"{a}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"})
            env_id = admin.get("/environments").json()["items"][0]["id"]
            made = admin.post("/users", json={"name": "maria", "email": "maria@example.com",
                                              "environment_roles": {env_id: "environment_maker"}}).json()
            maria = {"Authorization": f"Bearer {made['token']}"}
            assert admin.post(f"/users/{made['id']}/password", json={"password": PASSWORD}).status_code == 200
            cookie = _sign_in(a, "maria@example.com", PASSWORD)
            assert _page(b, cookie) == 200  # one session, every replica
            assert httpx.get(f"{b}/api/v1/me", headers=maria).status_code == 200

            assert admin.patch(f"/users/{made['id']}", json={"disabled": True}).status_code == 200
            _within_a_second(lambda: httpx.get(f"{b}/api/v1/me", headers=maria).status_code == 401)
            _within_a_second(lambda: _page(b, cookie) == 303)

            assert admin.patch(f"/users/{made['id']}", json={"disabled": False}).status_code == 200
            assert httpx.get(f"{b}/api/v1/me", headers=maria).status_code == 200
            signed_out = _sign_in(b, "maria@example.com", PASSWORD)
            kept = _sign_in(b, "maria@example.com", PASSWORD)
            with httpx.Client(base_url=a, cookies={"credflow_session": signed_out}) as browser:
                form = browser.get("/account/password").text
                assert browser.post("/sign-out", data={"csrf_token": _csrf(form)}).status_code == 303
            _within_a_second(lambda: _page(b, signed_out) == 303)
            assert _page(b, kept) == 200
        with running_server(tmp_path / "b", env, clean=True) as (b, _):  # a restart, from nothing in memory
            assert _page(b, signed_out) == 303
            assert _page(b, kept) == 200
    finally:
        next(url_gen, None)
