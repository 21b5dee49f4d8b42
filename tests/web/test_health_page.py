"""The Health page in a real browser: sign-in lands on it when anything is critical, the navigation's badge counts
the critical and warning findings, and a maker's page shows only what she may see, never a secret value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page

from tests.web.helpers import Admin, path_of, shot, sign_in, sign_in_admin, unlabelled_controls

pytestmark = pytest.mark.browser

CANARY = "Canary-Secret-4d19b7"


def _credential(api: Admin, name: str, expires_at: str) -> dict[str, object]:
    api.call("PUT", api.e(f"/secret-stores/health-vault/secrets/{name}"), json={"value": CANARY,
                                                                               "expires_at": expires_at})
    var = name.replace("-", "_")
    api.call("POST", api.e("/environment-variables"), 201, json={"schema_name": f"{var}_user", "type": "text",
                                                                  "value": "robot"})
    api.call("POST", api.e("/environment-variables"), 201, json={
        "schema_name": f"{var}_pass", "type": "secret", "secret_reference": {"store": "health-vault", "name": name}})
    return api.call("POST", api.e("/credentials"), 201, json={"name": name, "username_variable": f"{var}_user",  # type: ignore[no-any-return]
                                                               "password_variable": f"{var}_pass"})


def test_sign_in_lands_on_health_when_something_is_critical(new_page: Callable[[], Page], admin_api: Admin) -> None:
    admin_api.call("POST", admin_api.e("/secret-stores"), 201, json={"name": "health-vault", "kind": "builtin"})
    admin_api.person("hana", "environment_maker", "hana-password-1")
    page = new_page()
    sign_in(page, "hana@example.com", "hana-password-1", "hana-own-password-1")
    assert path_of(page).startswith("/env/default/credentials")  # nothing of hers needs attention
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Health").count() == 1

    _credential(admin_api, "soon-pw", (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _credential(admin_api, "old-pw", "2020-01-01T00:00:00Z")
    admin = new_page()
    sign_in_admin(admin)
    assert path_of(admin) == "/env/default/health"
    shot(admin, "health")
    main = admin.inner_text("main")
    assert "Expired" in main and "Expires soon" in main and "old-pw" in main and "soon-pw" in main
    assert admin.locator("nav .badge").inner_text() == "2"
    assert CANARY not in admin.content() and unlabelled_controls(admin) == []

    page.goto("/env/default/health")  # hana sees none of the administrator's credentials
    assert "Nothing needs attention." in page.inner_text("main")
    assert page.locator("nav .badge").count() == 0
