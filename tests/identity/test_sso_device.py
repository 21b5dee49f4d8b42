"""The CLI signs in through the provider: the device authorization grant (RFC 8628) through credflow's API,
and ``credflow login --sso``, which keeps a credflow token and never the provider's."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from credflow.cli.main import app
from credflow.client.http import Client
from tests.identity.sso import World, approve_device, sso_world


@pytest.fixture
def world(tmp_path: Path) -> Any:
    with sso_world(tmp_path, oidc_auto_create=True,
                   oidc_role_map=json.dumps({"credflow-makers": {"default": "environment_maker"}})) as w:
        yield w


def test_a_device_sign_in_ends_with_a_credflow_token(world: World) -> None:
    api = httpx.Client(base_url=f"{world.url}/api/v1")
    started = api.post("/auth/device").json()
    assert set(started) == {"handle", "user_code", "verification_uri", "verification_uri_complete", "expires_in",
                            "interval"}
    assert started["verification_uri"].startswith(world.op.issuer) and started["user_code"]
    pending = api.post("/auth/device/token", json={"handle": started["handle"]})
    assert pending.status_code == 202 and pending.json() == {"status": "authorization_pending"}
    assert "Signed in" in approve_device(world, started["verification_uri_complete"], "bob", "bob-Pa55word")
    done = api.post("/auth/device/token", json={"handle": started["handle"]})
    assert done.status_code == 200, done.text
    got = done.json()
    assert got["token"].startswith("cfu_") and got["name"] == "credflow login --sso"
    assert not {"id_token", "access_token", "refresh_token"} & set(got)  # the provider's stay with the server
    me = httpx.get(f"{world.url}/api/v1/me", headers={"Authorization": f"Bearer {got['token']}"}).json()
    assert me["email"] == "bob@corp.example" and set(me["environment_roles"].values()) == {"environment_maker"}
    again = api.post("/auth/device/token", json={"handle": started["handle"]})  # one token per sign-in
    assert again.status_code == 401 and again.json()["code"] == "sso_refused"


def test_an_unknown_handle_is_refused_and_counted(world: World) -> None:
    api = httpx.Client(base_url=f"{world.url}/api/v1")
    resp = api.post("/auth/device/token", json={"handle": "guessed"})
    assert resp.status_code == 401 and resp.json()["reason"] == "expired_token"


def test_credflow_login_sso_keeps_a_credflow_token(world: World, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDFLOW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("CREDFLOW_TOKEN", raising=False)
    shown: dict[str, str] = {}
    errors: list[BaseException] = []
    real_post = Client.post

    def approve(url: str) -> None:
        try:
            approve_device(world, url, "bob", "bob-Pa55word")
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    def spy(self: Client, path: str, json: Any = None, **kw: Any) -> Any:
        got = real_post(self, path, json, **kw)
        if path == "/auth/device":  # the person goes to the provider while the CLI waits
            shown.update(got)
            threading.Thread(target=approve, args=(got["verification_uri_complete"],), daemon=True).start()
        return got

    monkeypatch.setattr(Client, "post", spy)
    result = CliRunner().invoke(app, ["login", "--sso", "--server", world.url])
    assert not errors, errors
    assert result.exit_code == 0, result.output
    assert shown["user_code"] in result.output and shown["verification_uri"] in result.output
    saved = json.loads((tmp_path / "config" / "config.json").read_text())
    assert saved["server"] == world.url and saved["token"].startswith("cfu_")
    assert os.stat(tmp_path / "config" / "config.json").st_mode & 0o077 == 0
    me = httpx.get(f"{world.url}/api/v1/me", headers={"Authorization": f"Bearer {saved['token']}"}).json()
    assert me["email"] == "bob@corp.example"
    assert "id_token" not in json.dumps(saved)
