"""Sessions, CSRF and sign-in throttling of the web pages, over HTTP (no browser needed)."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from credflow.persistence.tables import AuditRecord
from credflow.services.core import Core
from tests.conftest import Api

PASSWORD = "admin-password-for-pages"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _sign_in(client: TestClient, email: str = "admin@localhost", password: str = PASSWORD,
             next_: str = "/") -> httpx.Response:
    token = _csrf(client.get("/sign-in").text)
    return client.post("/sign-in", data={"csrf_token": token, "email": email, "password": password, "next": next_},
                       follow_redirects=False)


def _admin_password(admin: Api) -> None:
    admin.ok(admin.post(f"/users/{admin.ok(admin.get('/me'))['id']}/password", {"password": PASSWORD}))


def test_the_session_cookie_is_httponly_lax_and_secure_under_https(admin: Api, client: TestClient) -> None:
    _admin_password(admin)
    resp = _sign_in(client)
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith("credflow_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    secure = TestClient(client.app, base_url="https://testserver")
    cookie = next(c for c in _sign_in(secure).headers.get_list("set-cookie") if c.startswith("credflow_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie


def test_every_post_needs_this_sessions_csrf_token(admin: Api, client: TestClient) -> None:
    _admin_password(admin)
    other = TestClient(client.app)
    _sign_in(client)
    _sign_in(other)
    foreign = _csrf(other.get("/env/default/stores/new").text)
    for token in (None, foreign, "forged"):
        data = {"name": "vault", "kind": "builtin", **({"csrf_token": token} if token else {})}
        resp = client.post("/env/default/stores/new", data=data)
        assert resp.status_code == 403 and "csrf_rejected" in resp.text
    assert admin.ok(admin.get(admin.e("/secret-stores")))["items"] == []
    mine = _csrf(client.get("/env/default/stores/new").text)
    assert client.post("/env/default/stores/new", data={"csrf_token": mine, "name": "vault", "kind": "builtin"},
                       follow_redirects=False).status_code == 303
    fresh = TestClient(client.app)
    refused = fresh.post("/sign-in", data={"email": "admin@localhost", "password": PASSWORD, "next": "/"})
    assert refused.status_code == 403  # the sign-in form carries its own pre-session token


def test_failed_sign_ins_are_throttled_and_audited_without_the_password(admin: Api, client: TestClient,
                                                                       core: Core) -> None:
    _admin_password(admin)
    for _ in range(5):
        resp = _sign_in(client, password="wrong-guess-123")
        assert resp.status_code == 401 and "the email or the password is not right" in resp.text
    resp = _sign_in(client)  # even the right password waits now
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0 and "sign_in_throttled" in resp.text
    assert _sign_in(client, email="nobody@example.com", password="whatever-123").status_code == 401
    with core.db.read() as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.action == "auth.signin_failed")).all()
        details = [r.detail for r in rows]
    assert [d["email"] for d in details] == ["admin@localhost"] * 5 + ["nobody@example.com"]
    assert {d["reason"] for d in details} == {"wrong_password", "unknown_email"}
    assert "wrong-guess-123" not in repr(details) and "whatever-123" not in repr(details)
    audit = admin.ok(admin.get(admin.e("/audit"), params={"action": "auth.signin_failed"}))["items"]
    assert len(audit) == 5  # the administrator's environment sees the attempts on its user


def test_signing_out_ends_the_session(admin: Api, client: TestClient) -> None:
    _admin_password(admin)
    _sign_in(client)
    cookie = client.cookies.get("credflow_session")
    page = client.get("/env/default/credentials")
    assert page.status_code == 200
    assert client.post("/sign-out", data={"csrf_token": _csrf(page.text)}, follow_redirects=False).status_code == 303
    replay = TestClient(client.app, cookies={"credflow_session": cookie})
    resp = replay.get("/env/default/credentials", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/sign-in")


def test_changing_the_password_ends_the_other_sessions(admin: Api, client: TestClient) -> None:
    _admin_password(admin)
    laptop, phone = client, TestClient(client.app)
    _sign_in(laptop)
    _sign_in(phone)
    token = _csrf(laptop.get("/account/password").text)
    resp = laptop.post("/account/password", data={"csrf_token": token, "current": PASSWORD,
                                                  "new": "a-brand-new-password", "confirm": "a-brand-new-password"})
    assert resp.status_code == 200 and "Your password is changed." in resp.text
    assert laptop.get("/env/default/credentials").status_code == 200
    assert phone.get("/env/default/credentials", follow_redirects=False).status_code == 303


def test_the_page_after_sign_in_is_always_on_this_site(admin: Api, client: TestClient) -> None:
    _admin_password(admin)
    assert 'name="next" value="/"' in client.get("/sign-in?next=//evil.example/x").text
    resp = _sign_in(client, next_="https://evil.example/")
    assert resp.headers["location"] == "/"
    assert _sign_in(TestClient(client.app), next_="/env/default/variables").headers["location"] == \
        "/env/default/variables"


def test_pages_forbid_framing_scripts_from_elsewhere_and_caching(client: TestClient) -> None:
    resp = client.get("/sign-in")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY" and resp.headers["cache-control"] == "no-store"
    assert client.get("/static/htmx.min.js").status_code == 200
    assert client.get("/static/htmx.LICENSE").status_code == 200
    assert client.get("/static/../settings.py").status_code == 404


def test_a_refused_form_shows_the_error_and_never_echoes_a_secret(admin: Api, client: TestClient) -> None:
    _admin_password(admin)
    _sign_in(client)
    token = _csrf(client.get("/env/default/stores/new?kind=hashicorp-vault").text)
    resp = client.post("/env/default/stores/new", data={
        "csrf_token": token, "kind": "hashicorp-vault", "name": "bao", "vault_url": "http://127.0.0.1:1",
        "cfg.token": "Vault-Token-Never-Echoed"})
    assert resp.status_code == 422 and "invalid_store_config" in resp.text and "address" in resp.text
    assert "Vault-Token-Never-Echoed" not in resp.text and 'value="bao"' in resp.text
    admin.store("vault")
    resp = client.post("/env/default/stores/vault/secrets", data={"csrf_token": token, "name": "bad name!",
                                                                 "value": "Secret-Never-Echoed"})
    assert resp.status_code == 422 and "malformed_secret_name" in resp.text
    assert "Secret-Never-Echoed" not in resp.text


def test_without_a_session_pages_send_the_person_to_sign_in(client: TestClient) -> None:
    resp = client.get("/env/default/runs?x=1", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/sign-in?next=%2Fenv%2Fdefault%2Fruns%3Fx%3D1"
    fragment = client.get("/env/default/runs/some-run", headers={"HX-Request": "true"}, follow_redirects=False)
    assert fragment.headers["hx-redirect"] == "/sign-in"  # htmx reloads the whole page rather than a fragment
    assert client.post("/env/default/credentials/new", follow_redirects=False).headers["location"] == "/sign-in"
