"""Helpers for the sharing, teams and audit tests."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from credflow.persistence.tables import Connection
from credflow.services.core import Core
from tests.conftest import Api, sign_in_cli


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
    return functools.partial(sign_in_cli, monkeypatch, client)
