"""The Account page lists one's signed-in browsers and API tokens, and ends any of them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import Api, problem
from tests.identity.test_users_who_leave import _csrf, page_status, signed_in_browser

NEW_PASSWORD = "my-own-Pa55word-now"


def _own_password(browser: TestClient) -> None:
    token = _csrf(browser.get("/account/password").text)
    resp = browser.post("/account/password", data={"csrf_token": token, "current": "a-first-Pa55word-for-pages",
                                                   "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert resp.status_code == 200, resp.text


def test_the_account_page_ends_a_session_and_revokes_a_token(admin: Api) -> None:
    maria = admin.user("maria")
    laptop = signed_in_browser(admin, maria)
    _own_password(laptop)
    phone = TestClient(laptop.app)
    token = _csrf(phone.get("/sign-in").text)
    assert phone.post("/sign-in", data={"csrf_token": token, "email": "maria@example.com", "password": NEW_PASSWORD,
                                        "next": "/"}, follow_redirects=False).status_code == 303
    page = laptop.get("/account")
    assert page.status_code == 200 and "(this one)" in page.text and "initial" in page.text
    ends = re.findall(r'action="/account/sessions/([0-9a-f]+)/end"', page.text)
    assert len(ends) == 2
    current = re.search(r'action="/account/sessions/([0-9a-f]+)/end"[^<]*<input[^>]*>\s*<button type="submit">Sign out',
                        page.text)
    assert current is not None
    other = next(s for s in ends if s != current.group(1))
    resp = laptop.post(f"/account/sessions/{other}/end", data={"csrf_token": _csrf(page.text)},
                       follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/account?done=session_ended"
    assert page_status(phone) == 303 and page_status(laptop) == 200

    (token_id,) = re.findall(r'action="/account/tokens/([0-9a-f]+)/revoke"', page.text)
    assert laptop.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": _csrf(page.text)},
                       follow_redirects=False).status_code == 303
    problem(maria.get("/me"), 401)
    # ending the current session signs this browser out
    resp = laptop.post(f"/account/sessions/{current.group(1)}/end", data={"csrf_token": _csrf(page.text)},
                       follow_redirects=False)
    assert resp.headers["location"] == "/sign-in" and page_status(laptop) == 303


def test_nobody_ends_another_users_session_from_the_account_page(admin: Api) -> None:
    maria, bob = admin.user("maria"), admin.user("bob")
    marias = signed_in_browser(admin, maria)
    bobs = signed_in_browser(admin, bob)
    _own_password(marias)
    _own_password(bobs)
    mine = re.findall(r'action="/account/sessions/([0-9a-f]+)/end"', marias.get("/account").text)
    page = bobs.get("/account")
    resp = bobs.post(f"/account/sessions/{mine[0]}/end", data={"csrf_token": _csrf(page.text)})
    assert resp.status_code == 404 and "session_not_found" in resp.text
    assert page_status(marias) == 200
