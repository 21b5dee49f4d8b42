"""The first sign-in to the web pages of a fresh server: the administrator gives themselves a password with the
CLI, then signs in; a person they add signs in with a first password and must choose their own."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx

from tests.e2e.server import CREDFLOW, running_server

TOKEN = "cfu_first-sign-in-admin-token-0123"


def _cli(env: dict[str, str], *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREDFLOW, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60,
                          check=False)


def _sign_in(url: str, email: str, password: str) -> httpx.Client:
    web = httpx.Client(base_url=url, follow_redirects=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/sign-in").text)
    assert token
    web.post("/sign-in", data={"csrf_token": token.group(1), "email": email, "password": password, "next": "/"})
    return web


def test_the_administrator_sets_a_password_with_the_cli_then_signs_in(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    env.update(CREDFLOW_BOOTSTRAP_TOKEN=TOKEN, CREDFLOW_CONFIG_DIR=str(tmp_path / "config"))
    with running_server(tmp_path / "data", env=env) as (url, _):
        env.update(CREDFLOW_SERVER=url, CREDFLOW_TOKEN=TOKEN)
        done = _cli(env, "password", "set", "admin@localhost", "--stdin", stdin="my-admin-password-1\n")
        assert done.returncode == 0 and "password set for admin@localhost" in done.stderr, done.stderr
        assert "my-admin-password-1" not in done.stdout + done.stderr
        admin = _sign_in(url, "admin@localhost", "my-admin-password-1")
        page = admin.get("/")
        assert str(page.url).endswith("/env/default/credentials") and "Credentials" in page.text

        made = httpx.post(f"{url}/api/v1/users", headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"name": "pat", "email": "pat@example.com",
                                "environment_roles": {"default": "environment_maker"}}).json()
        done = _cli(env, "password", "set", made["id"], "--stdin", stdin="pats-first-password\n")
        assert "to be changed at the first sign-in" in done.stderr
        pat = _sign_in(url, "pat@example.com", "pats-first-password")
        assert str(pat.get("/env/default/credentials").url).endswith("/account/password")
