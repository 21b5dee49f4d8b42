"""A real credflow server (uvicorn in a thread, SQLite) on a free loopback port, and a browser for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from credflow.api.app import create_app
from credflow.services.access.users import bootstrap
from credflow.services.core import build_core
from credflow.settings import Settings
from tests.e2e.server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ADMIN_TOKEN = "cfu_web-admin-token-0123456789abcdef"
ADMIN_PASSWORD = "admin-Pa55word-for-the-web"


@contextmanager
def web_server(data_dir: Path) -> Iterator[str]:
    """Serve credflow on 127.0.0.1; the admin's password is ``ADMIN_PASSWORD``. Yields the base URL."""
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'credflow.db'}",
                        bootstrap_token=ADMIN_TOKEN, run_workers=True)
    core = build_core(settings)
    bootstrap(core, ADMIN_TOKEN)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, core), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    me = httpx.get(f"{url}/api/v1/me", headers=headers).json()
    httpx.post(f"{url}/api/v1/users/{me['id']}/password", headers=headers,
               json={"password": ADMIN_PASSWORD}).raise_for_status()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        core.db.engine.dispose()
