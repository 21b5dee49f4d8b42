"""The seed's two solutions, built over the HTTP API: a credential with its variables, and a cloud flow with
the desktop flow it runs through a connection reference bound to a connection that uses the credential."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from credflow.api.app import create_app
from credflow.services.access.users import bootstrap
from credflow.services.core import build_core
from credflow.settings import Settings
from tests.conftest import Api, new_machine, pg_schema_url

PASSWORD = "S3cr3t-Pa55word!"
TARGET_PASSWORD = "Pr0d-0nly-Pa55!"
OTHER_TOKEN = "cfu_second-server-admin-token-0123"


def machine(api: Api, name: str = "robot-pc") -> str:
    return str(new_machine(api, name)[1])


def connection(api: Api, credential: str, name: str = "Robot conn", target: str | None = None) -> dict[str, Any]:
    body = {"name": name, "target": {"machine": target or machine(api)}, "credential": credential}
    return api.ok(api.post(api.e("/connections"), body), 201)  # type: ignore[no-any-return]


def credential_solution(api: Api) -> dict[str, Any]:
    """Solution CredentialSolution: the credential "Robot login" and its two variables (pulled in)."""
    api.store("vault")
    api.secret("vault", "robot-password", PASSWORD)
    api.text_var("robot_user", "robot@corp.example")
    api.secret_var("robot_pass", "vault", "robot-password")
    cred = api.credential("Robot login", "robot_user", "robot_pass", description="for the robot")
    api.ok(api.post(api.e("/solutions"), {"unique_name": "CredentialSolution", "display_name": "Credentials",
                                          "version": "1.0.0.0", "publisher": "Contoso"}), 201)
    api.ok(api.post(api.e("/solutions/CredentialSolution/components"), {"type": "credential", "id": cred["id"]}))
    return cred


def flow_solution(api: Api, credential: str) -> dict[str, Any]:
    """Solution FlowSolution: the cloud flow, which pulls in its desktop flow and connection reference."""
    conn = connection(api, credential)
    api.ok(api.post(api.e("/desktop-flows"), {"name": "Invoice bot", "command": ["python", "-c", "print(1)"]}), 201)
    api.ok(api.post(api.e("/connection-references"), {"name": "Robot ref", "connection": conn["id"]}), 201)
    flow = api.ok(api.post(api.e("/cloud-flows"), {
        "name": "Nightly invoices", "trigger": {"type": "schedule", "cron": "0 2 * * *"},
        "actions": [{"type": "run_desktop_flow", "desktop_flow": "Invoice bot", "connection_reference": "Robot ref"}]}),
        201)
    api.ok(api.post(api.e("/solutions"), {"unique_name": "FlowSolution", "display_name": "Flows",
                                          "version": "1.0.0.0"}), 201)
    api.ok(api.post(api.e("/solutions/FlowSolution/components"), {"type": "cloud_flow", "id": flow["id"]}))
    return {"connection": conn, "cloud_flow": flow}


@pytest.fixture
def seeded(admin: Api) -> dict[str, Any]:
    cred = credential_solution(admin)
    return {"credential": cred, **flow_solution(admin, cred["id"])}


def export(api: Api, solution: str) -> bytes:
    resp = api.get(api.e(f"/solutions/{solution}/export"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    return resp.content


def import_(api: Api, data: bytes, settings: bytes | None = None, dry_run: bool = False) -> httpx.Response:
    files: dict[str, Any] = {"file": ("solution.zip", data, "application/zip")}
    if settings is not None:
        files["settings"] = ("settings.json", settings, "application/json")
    return api.post(api.e("/solutions/import"), files=files, params={"dry_run": str(dry_run).lower()})


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def target_env(admin: Api, name: str = "production", password: str = TARGET_PASSWORD) -> Api:
    """Another environment with a store of the same name holding its own secret."""
    env = admin.ok(admin.post("/environments", {"name": name}), 201)
    other = Api(admin.http, admin.token, env["id"])
    other.store("vault")
    other.secret("vault", "robot-password", password)
    return other


def inventory(api: Api) -> dict[str, list[str]]:
    """What a user sees of every component type in an environment."""
    paths = {"variables": "/environment-variables", "credentials": "/credentials", "desktop_flows": "/desktop-flows",
             "connection_references": "/connection-references", "cloud_flows": "/cloud-flows",
             "solutions": "/solutions"}
    out = {}
    for key, path in paths.items():
        items = api.ok(api.get(api.e(path)))["items"]
        out[key] = sorted(i.get("schema_name") or i.get("name") or i.get("unique_name") for i in items)
    return out


@pytest.fixture
def second_server(database_url: str, tmp_path: Path) -> Iterator[Api]:
    """Another credflow: its own app, database and master key."""
    schemas = None
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'second.db'}"
    else:
        schemas = pg_schema_url()
        url = next(schemas)
    settings = Settings(data_dir=tmp_path / "second", database_url=url, bootstrap_token=OTHER_TOKEN,
                        run_workers=False)
    core = build_core(settings)
    bootstrap(core, OTHER_TOKEN)
    try:
        with TestClient(create_app(settings, core)) as client:
            api = Api(client, OTHER_TOKEN)
            api.env = api.ok(api.get("/environments"))["items"][0]["id"]
            yield api
    finally:
        core.db.engine.dispose()
        if schemas is not None:
            next(schemas, None)
