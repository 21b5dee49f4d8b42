"""A credflow server (uvicorn in a thread, SQLite) signed on to the test OpenID provider, and a browser made of
httpx that follows redirects between the two and fills in the provider's login form."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import uvicorn

from credflow.api.app import create_app
from credflow.services.access.users import bootstrap
from credflow.services.core import Core, build_core
from credflow.settings import Settings
from tests.e2e.server import free_port
from tests.identity.op import OpenIdProvider, openid_provider

ADMIN_TOKEN = "cfu_sso-admin-token-0123456789abcdefghijklmn"


@dataclass
class World:
    url: str
    core: Core
    op: OpenIdProvider

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def browser(self) -> httpx.Client:
        return httpx.Client(timeout=30)


@contextmanager
def sso_world(tmp: Path, **settings: Any) -> Iterator[World]:
    """credflow on a free port with single sign-on through a fresh provider (``settings`` more or instead)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with openid_provider([f"{url}/auth/oidc/callback"], tmp) as op:
        config = Settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'credflow.db'}",
                          bootstrap_token=ADMIN_TOKEN, run_workers=False, **op.settings(**settings))
        core = build_core(config)
        bootstrap(core, ADMIN_TOKEN)
        server = uvicorn.Server(uvicorn.Config(create_app(config, core), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("credflow did not start")
            time.sleep(0.05)
        try:
            yield World(url=url, core=core, op=op)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            core.db.engine.dispose()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def start(browser: httpx.Client, world: World, next_: str = "/") -> str:
    """Press "Sign in with ..." on credflow's sign-in page: the provider's authorization URL it redirects to."""
    page = browser.get(f"{world.url}/sign-in")
    assert "Sign in with Test IdP" in page.text
    resp = browser.post(f"{world.url}/auth/oidc/start", data={"csrf_token": csrf(page.text), "next": next_})
    assert resp.status_code == 303, resp.text
    location = resp.headers["location"]
    assert location.startswith(world.op.issuer)
    return location


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def at_provider(browser: httpx.Client, world: World, authorize_url: str, login: str, password: str) -> str:
    """Sign in at the provider (its login form; consent is given for the first-party client): the callback URL
    the provider sends the browser back to credflow with, not yet followed."""
    url: str = authorize_url
    for _ in range(20):
        if url.startswith(f"{world.url}/auth/oidc/callback"):
            return url
        resp = browser.get(url)
        while resp.status_code in (302, 303) and not resp.headers["location"].startswith(world.url):
            resp = browser.get(urljoin(url, resp.headers["location"]))
        if resp.status_code in (302, 303):
            url = resp.headers["location"]
            continue
        form = re.search(r'<form method="post" action="([^"]+)"', resp.text)
        assert form and resp.status_code == 200, resp.text
        posted = browser.post(urljoin(str(resp.url), form.group(1)), data={"login": login, "password": password})
        assert posted.status_code in (302, 303), posted.text
        url = urljoin(str(posted.url), posted.headers["location"])
    raise AssertionError("the provider never sent the browser back")


def sign_in(browser: httpx.Client, world: World, login: str, password: str, next_: str = "/") -> httpx.Response:
    """The whole sign-in; the answer of credflow's callback (303 to the page after, or the refusal page)."""
    return browser.get(at_provider(browser, world, start(browser, world, next_), login, password))


def signed_in(browser: httpx.Client, world: World) -> bool:
    resp = browser.get(f"{world.url}/account/password")
    return resp.status_code == 200


def _form(html: str, form_id: str | None = None) -> tuple[str, dict[str, str]]:
    """The action and the hidden fields of a form (by id, else the first)."""
    pattern = rf'<form[^>]*id="{re.escape(form_id)}"[^>]*>(.*?)</form>' if form_id else r"<form[^>]*>(.*?)</form>"
    match = re.search(pattern, html, re.S)
    assert match, html
    tag = html[match.start():html.index(">", match.start()) + 1]
    action = re.search(r'action="([^"]*)"', tag)
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', match.group(1)))
    fields.update(dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*type="hidden"[^>]*value="([^"]*)"',
                                  match.group(1))))
    return (action.group(1) if action else ""), fields


def approve_device(world: World, verification_uri_complete: str, login: str, password: str) -> str:
    """A person opens the verification URL, confirms the code (the provider's pages post themselves along the
    way) and signs in at the provider: the last page."""
    browser = world.browser()
    resp = browser.get(verification_uri_complete, follow_redirects=True)
    for _ in range(10):
        if "<form" not in resp.text:
            break
        if 'name="login"' in resp.text:
            action, fields = _form(resp.text)
            fields = {"login": login, "password": password}
        else:
            action, fields = _form(resp.text, "op.deviceConfirmForm" if "op.deviceConfirmForm" in resp.text else None)
        resp = browser.post(urljoin(str(resp.url), action), data=fields, follow_redirects=True)
    assert resp.status_code == 200, resp.text
    return resp.text
