"""A real ``credflow serve`` process on a free loopback port, with its log in its data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.conftest import ADMIN_TOKEN, Api
from tests.rotation.conftest import wait_for

CREDFLOW = str(Path(sys.executable).parent / "credflow")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(data_dir: Path, database_url: str, **env: str) -> Iterator[tuple[Api, subprocess.Popen[bytes]]]:
    """``credflow serve`` on a free port; yields the admin's API and the process (stopped afterwards)."""
    port = _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / f"server-{port}.log", "wb")
    proc = subprocess.Popen(
        [CREDFLOW, "serve", "--port", str(port), "--data-dir", str(data_dir)], stdout=log, stderr=log,
        env={**os.environ, "CREDFLOW_DATABASE_URL": database_url, "CREDFLOW_BOOTSTRAP_TOKEN": ADMIN_TOKEN, **env})
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        wait_for(lambda: proc.poll() is not None or _healthy(http), timeout=30, interval=0.1)
        assert proc.poll() is None, (data_dir / f"server-{port}.log").read_text()
        api = Api(http, ADMIN_TOKEN)
        api.env = api.ok(api.get("/environments"))["items"][0]["id"]
        yield api, proc
    finally:
        http.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _healthy(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False
