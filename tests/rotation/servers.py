"""A real ``credflow serve`` process on a free loopback port, with its log in its data directory."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.conftest import ADMIN_TOKEN, Api
from tests.e2e.server import free_port, running_server


@contextmanager
def server(data_dir: Path, database_url: str, **env: str) -> Iterator[tuple[Api, subprocess.Popen[str]]]:
    """``credflow serve`` on a free port; yields the admin's API and the process (stopped afterwards)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {"CREDFLOW_DATABASE_URL": database_url, "CREDFLOW_BOOTSTRAP_TOKEN": ADMIN_TOKEN, **env}
    with running_server(data_dir, settings, port, log=data_dir / f"server-{port}.log") as (url, proc), \
            httpx.Client(base_url=url, timeout=30) as http:
        api = Api(http, ADMIN_TOKEN)
        api.env = api.ok(api.get("/environments"))["items"][0]["id"]
        yield api, proc
