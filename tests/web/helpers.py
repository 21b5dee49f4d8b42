"""What the browser tests share: the administrator over the API, signing in, screenshots, page checks."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

import httpx
from nacl.public import PrivateKey

from tests.web.server import ADMIN_PASSWORD, ADMIN_TOKEN, SCREENSHOTS

if TYPE_CHECKING:
    from playwright.sync_api import Page


class Admin:
    """The bootstrap administrator over the HTTP API, to set the scene quickly."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def call(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        resp = self.http.request(method, path, **kw)
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    def e(self, path: str) -> str:
        return f"/environments/default{path}"

    def person(self, name: str, role: str, password: str) -> dict[str, Any]:
        made = self.call("POST", "/users", 201, json={"name": name, "email": f"{name}@example.com",
                                                      "environment_roles": {"default": role}})
        self.call("POST", f"/users/{made['id']}/password", json={"password": password})
        return made

    def machine(self, name: str) -> tuple[dict[str, Any], httpx.Client]:
        """A registered machine and a client holding its token (the agent's side of the API)."""
        reg = self.call("POST", self.e("/machine-registrations"), 201)
        key = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
        made = httpx.post(f"{self.url}/api/v1/machines/register", json={
            "registration_token": reg["registration_token"], "name": name, "public_key": key})
        assert made.status_code == 201, made.text
        agent = httpx.Client(base_url=f"{self.url}/api/v1",
                             headers={"Authorization": f"Bearer {made.json()['machine_token']}"})
        return made.json(), agent



def sign_in(page: Page, email: str, password: str, new_password: str | None = None) -> None:
    """Sign in; at a first password set by an administrator, choose ``new_password``."""
    page.goto("/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if "/account/password" in page.url:
        assert new_password, "this person must choose a password first"
        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password", exact=True).fill(new_password)
        page.get_by_label("New password again").fill(new_password)
        page.get_by_role("button", name="Change password").click()
    assert "/env/default/" in page.url, page.url


def sign_in_admin(page: Page) -> None:
    sign_in(page, "admin@localhost", ADMIN_PASSWORD)


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def csrf_of(page: Page) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.content())
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
    .filter(el => el.type !== 'hidden')
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
    .map(el => el.outerHTML)"""


def unlabelled_controls(page: Page) -> list[str]:
    found: list[str] = page.evaluate(UNLABELLED)
    return found


def path_of(page: Page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)
