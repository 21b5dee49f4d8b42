"""Helpers for the sharing, teams and audit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from credflow.client.http import Client
from credflow.persistence.tables import Connection
from credflow.services.core import Core
from tests.conftest import Api


def problem(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert body["code"] == code, body
    return body


def add_connection(core: Core, owner: Api, credential_id: str, name: str = "conn") -> str:
    """A connection row as the connections service makes it (owner, credential, status)."""
    env = owner.env
    with core.db.transaction() as s:
        conn = Connection(env_id=env, name=name, owner_id=owner.info["id"], credential_id=credential_id,
                          status="connected")
        s.add(conn)
        s.flush()
        return conn.id


def connection_status(core: Core, conn_id: str) -> str:
    with core.db.read() as s:
        status = s.scalar(select(Connection.status).where(Connection.id == conn_id))
        assert status is not None
        return status


@pytest.fixture
def cli_as(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Callable[[Api], None]:
    """Point the CLI's API client at the test server, signed in as the given caller."""
    from credflow.cli import common

    def sign_in(api: Api) -> None:
        def make() -> Client:
            c = Client.__new__(Client)
            c.http = TestClient(client.app, headers={"Authorization": f"Bearer {api.token}"})
            return c

        monkeypatch.setattr(common, "client", make)
        monkeypatch.setenv("CREDFLOW_ENVIRONMENT", api.env)

    return sign_in
