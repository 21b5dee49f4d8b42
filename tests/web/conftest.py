"""Browser fixtures: one real server and one chromium per test module, a fresh browser context per person."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.web.helpers import Admin
from tests.web.server import CHROMIUM, CHROMIUM_ARGS, web_server

if CHROMIUM.exists():
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    with web_server(tmp_path_factory.mktemp("web")) as url:
        yield url


@pytest.fixture(scope="module")
def admin_api(server: str) -> Iterator[Admin]:
    api = Admin(server)
    yield api
    api.http.close()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser, server: str) -> Iterator[Callable[[], Page]]:
    """Pages in separate browser contexts: one person each, with their own cookies."""
    contexts: list[BrowserContext] = []
    problems: list[str] = []  # script errors and Content-Security-Policy violations

    def make() -> Page:
        context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error"
                and not msg.text.startswith("Failed to load resource") else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert problems == [], "the pages logged errors"
