"""Single sign-on through a real OpenID provider (node oidc-provider), over HTTP like a browser: the code flow
with PKCE, state and nonce; a person matched by verified email, created when allowed, with roles mapped from
groups at every sign-in; and every way a sign-in can be forged or replayed refused with a clear page, an audit
record and no session."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from credflow.api.app import create_app
from credflow.persistence.tables import AuditRecord, User, WebSession
from credflow.settings import Settings
from tests.identity.op import CLIENT_ID, new_key
from tests.identity.sso import World, at_provider, query, sign_in, signed_in, sso_world, start

ROLE_MAP = json.dumps({"credflow-admins": {"default": "system_administrator"},
                       "credflow-makers": {"default": "environment_maker", "lab": "basic_user"}})


@pytest.fixture
def world(tmp_path: Path) -> Any:
    with sso_world(tmp_path, oidc_auto_create=True, oidc_role_map=ROLE_MAP) as w:
        yield w


def _failures(world: World) -> list[dict[str, Any]]:
    with world.core.db.read() as s:
        return [r.detail for r in s.scalars(select(AuditRecord).where(AuditRecord.action == "auth.sso_failed")
                                            .order_by(AuditRecord.seq)).all()]


def _sessions(world: World) -> int:
    with world.core.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(WebSession)) or 0)


def _refused(world: World, resp: httpx.Response, reason: str, browser: httpx.Client) -> None:
    """A clear page (the sign-in page with the reason), an audit record, and no session."""
    assert resp.status_code == 401, resp.text
    assert "sso_refused" in resp.text and "Sign in with Test IdP" in resp.text
    assert _failures(world)[-1]["reason"] == reason
    assert not signed_in(browser, world)
    assert _sessions(world) == 0


def test_a_person_signs_in_through_the_provider_and_lands_on_credentials_with_mapped_roles(world: World) -> None:
    admin = world.admin()
    lab = admin.post("/environments", json={"name": "lab"}).json()
    other = admin.post("/environments", json={"name": "other"}).json()
    browser = world.browser()
    resp = sign_in(browser, world, "bob", "bob-Pa55word", next_="/")
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    page = browser.get(f"{world.url}/", follow_redirects=True)
    assert page.status_code == 200 and page.url.path.endswith("/credentials") and "Bob Maker" in page.text
    bob = next(u for u in admin.get("/users").json()["items"] if u["email"] == "bob@corp.example")
    default = admin.get("/environments/default").json()["id"]
    assert bob["environment_roles"] == {default: "environment_maker", lab["id"]: "basic_user"}
    # an administrator changes a mapped role and grants one the map does not name ...
    admin.patch(f"/users/{bob['id']}", json={"environment_roles": {"default": "basic_user", "other": "basic_user"}})
    # ... and the next sign-in maps the roles again, leaving the other environment alone
    again = world.browser()
    assert sign_in(again, world, "bob", "bob-Pa55word").status_code == 303
    roles = admin.get(f"/users/{bob['id']}").json()["environment_roles"]
    assert roles == {default: "environment_maker", lab["id"]: "basic_user", other["id"]: "basic_user"}
    with world.core.db.read() as s:
        done = s.scalars(select(AuditRecord).where(AuditRecord.action == "auth.sso_signin")).all()
        assert [r.detail["email"] for r in done] == ["bob@corp.example"] * 2 and done[0].detail["created"] is True
        assert {r.via for r in s.scalars(select(WebSession)).all()} == {"oidc"}


def test_the_browser_signs_out_and_an_administrator_signs_in(world: World) -> None:
    browser = world.browser()
    assert sign_in(browser, world, "ada", "ada-Pa55word", next_="/account/password").headers["location"] == \
        "/account/password"
    assert signed_in(browser, world)
    ada = next(u for u in world.admin().get("/users").json()["items"] if u["email"] == "ada@corp.example")
    assert set(ada["environment_roles"].values()) == {"system_administrator"}


def test_a_forged_state_is_refused(world: World) -> None:
    browser = world.browser()
    browser.get(f"{world.url}/sign-in")
    resp = browser.get(f"{world.url}/auth/oidc/callback", params={"state": "forged", "code": "whatever"})
    _refused(world, resp, "bad_state", browser)


def test_a_state_started_in_another_browser_is_refused_there(world: World) -> None:
    victim, attacker = world.browser(), world.browser()
    callback = at_provider(attacker, world, start(attacker, world), "bob", "bob-Pa55word")
    victim.get(f"{world.url}/sign-in")
    _refused(world, victim.get(callback), "bad_state", victim)
    assert attacker.get(callback).status_code == 303  # the browser that started it still can
    assert signed_in(attacker, world)


def test_a_replayed_callback_and_a_replayed_code_are_refused(world: World) -> None:
    browser = world.browser()
    callback = at_provider(browser, world, start(browser, world), "bob", "bob-Pa55word")
    assert browser.get(callback).status_code == 303
    sessions = _sessions(world)
    other = world.browser()  # the same callback again, in a browser with a state of its own
    resp = other.get(callback)
    assert resp.status_code == 401 and _failures(world)[-1]["reason"] == "bad_state"
    fresh = query(start(other, world))["state"]  # the code again, with a state that is good
    resp = other.get(f"{world.url}/auth/oidc/callback", params={"state": fresh, "code": query(callback)["code"]})
    assert resp.status_code == 401 and _failures(world)[-1]["reason"] == "code_rejected"
    assert not signed_in(other, world) and _sessions(world) == sessions


def _claims(world: World, real_nonce: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": world.op.issuer, "aud": CLIENT_ID, "sub": "sub-bob", "email": "bob@corp.example",
              "email_verified": True, "iat": now, "exp": now + 300, "nonce": real_nonce,
              "groups": ["credflow-makers"]}
    claims.update(changes or {})
    return claims


@pytest.mark.parametrize(("changes", "reason"), [
    ({"nonce": "another-nonce"}, "wrong_nonce"),
    ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 420}, "id_token_expired"),
    ({"iss": "https://idp.elsewhere.example"}, "wrong_issuer"),
    ({"aud": "another-client"}, "wrong_audience"),
    ({"foreign_key": True}, "invalid_id_token"),
])
def test_an_id_token_that_does_not_verify_is_refused(world: World, changes: dict[str, Any], reason: str) -> None:
    browser = world.browser()
    authorize = start(browser, world)
    callback = at_provider(browser, world, authorize, "bob", "bob-Pa55word")
    changes = dict(changes)
    foreign = changes.pop("foreign_key", False)
    world.op.next_id_token(world.op.sign(_claims(world, query(authorize)["nonce"], changes),
                                         key=new_key() if foreign else None))
    _refused(world, browser.get(callback), reason, browser)
    with world.core.db.read() as s:
        assert s.scalar(select(User.id).where(User.email == "bob@corp.example")) is None  # nothing made


def test_the_provider_s_own_token_with_the_right_nonce_passes_the_same_checks(world: World) -> None:
    browser = world.browser()
    authorize = start(browser, world)
    callback = at_provider(browser, world, authorize, "bob", "bob-Pa55word")
    world.op.next_id_token(world.op.sign(_claims(world, query(authorize)["nonce"])))
    assert browser.get(callback).status_code == 303 and signed_in(browser, world)


def test_an_unverified_email_and_a_disabled_user_are_refused(world: World) -> None:
    browser = world.browser()
    _refused(world, sign_in(browser, world, "eve", "eve-Pa55word"), "email_not_verified", browser)
    browser = world.browser()  # the provider remembers eve in the first one
    assert sign_in(browser, world, "bob", "bob-Pa55word").status_code == 303
    admin = world.admin()
    bob = next(u for u in admin.get("/users").json()["items"] if u["email"] == "bob@corp.example")
    admin.patch(f"/users/{bob['id']}", json={"disabled": True})
    assert not signed_in(browser, world)
    again = world.browser()
    _refused(world, sign_in(again, world, "bob", "bob-Pa55word"), "user_disabled", again)


def test_without_auto_create_an_unknown_person_is_refused_and_a_known_one_matched(tmp_path: Path) -> None:
    with sso_world(tmp_path) as world:
        browser = world.browser()
        _refused(world, sign_in(browser, world, "bob", "bob-Pa55word"), "unknown_user", browser)
        admin = world.admin()
        default = admin.get("/environments/default").json()["id"]
        made = admin.post("/users", json={"name": "Bob", "email": "Bob@Corp.example",
                                          "environment_roles": {default: "basic_user"}}).json()
        assert sign_in(browser, world, "bob", "bob-Pa55word").status_code == 303 and signed_in(browser, world)
        assert admin.get(f"/users/{made['id']}").json()["environment_roles"] == {default: "basic_user"}


def test_local_passwords_can_be_turned_off(tmp_path: Path) -> None:
    with sso_world(tmp_path, local_passwords=False) as world:
        browser = world.browser()
        page = browser.get(f"{world.url}/sign-in")
        assert "Sign in with Test IdP" in page.text and 'name="password"' not in page.text
        resp = browser.post(f"{world.url}/sign-in", data={"csrf_token": page.text.split('name="csrf_token" value="')
                                                          [1].split('"')[0], "email": "admin@localhost",
                                                          "password": "whatever-it-is", "next": "/"})
        assert resp.status_code == 403 and "local_passwords_off" in resp.text


def test_the_server_refuses_to_start_half_set_up(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path / "data", "database_url": f"sqlite:///{tmp_path / 'x.db'}", "run_workers": False}
    with pytest.raises(ValueError, match="together"):
        create_app(Settings(**base, oidc_issuer="https://idp.example", oidc_client_id="credflow"))
    with pytest.raises(ValueError, match="ROLE_MAP"):
        create_app(Settings(**base, oidc_issuer="https://idp.example", oidc_client_id="c", oidc_client_secret="s",
                            oidc_role_map='{"g": {"default": "owner"}}'))
    with pytest.raises(ValueError, match="LOCAL_PASSWORDS"):
        create_app(Settings(**base, local_passwords=False))
