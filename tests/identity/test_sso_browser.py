"""A real browser (Debian's chromium, driven by Playwright) signs in through the real OpenID provider: the
"Sign in with ..." button, the provider's login form, and back on credflow's Credentials page; then a forged
callback shows the refusal page and leaves no session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.identity.sso import sso_world
from tests.web.server import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def test_a_browser_signs_in_through_the_provider(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    role_map = json.dumps({"credflow-makers": {"default": "environment_maker"}})
    with sso_world(tmp_path, oidc_auto_create=True, oidc_role_map=role_map) as world, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_context().new_page()
            page.goto(f"{world.url}/sign-in")
            page.get_by_role("button", name="Sign in with Test IdP").click()
            page.wait_for_url(f"{world.op.issuer}/interaction/**")
            page.fill("input[name=login]", "bob")
            page.fill("input[name=password]", "bob-Pa55word")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{world.url}/env/**/credentials")
            assert page.get_by_role("heading", name="Credentials").is_visible()
            assert "Bob Maker" in page.content()

            other = chromium.new_context().new_page()
            other.goto(f"{world.url}/auth/oidc/callback?state=forged&code=forged")
            assert "sso_refused" in other.content() and "Sign in with Test IdP" in other.content()
            other.goto(f"{world.url}/")
            assert "/sign-in" in other.url
        finally:
            chromium.close()
