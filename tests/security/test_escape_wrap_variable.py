"""Path 1: a maker wraps someone else's secret variable in a credential of her own, connects it to her machine
and runs. Binding a secret variable needs the right to use its store; the chain is checked again at claim time."""

from __future__ import annotations

from tests.conftest import problem
from tests.security.conftest import Scene, allow_store


def _names(api, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c["name"] for c in api.ok(api.get(api.e(path), params={"limit": 500}))["items"]]


def test_a_maker_may_not_bind_a_secret_variable_of_a_store_she_may_not_use(scene: Scene) -> None:
    m = scene.mallory
    resp = m.post(m.e("/credentials"), {"name": "mine now", "username_variable": "prod_user",
                                         "password_variable": "prod_pass"})
    problem(resp, 403, "store_access_denied")
    assert "mine now" not in _names(scene.admin, "/credentials")


def test_a_share_shows_the_variable_but_does_not_let_her_bind_it(scene: Scene) -> None:
    a, m = scene.alice, scene.mallory
    a.ok(a.put(a.e(f"/credentials/{scene.cred['id']}/shares/{m.info['id']}"), {"role": "user"}))
    assert m.ok(m.get(m.e("/environment-variables/prod_pass")))["type"] == "secret"  # the seed's read grant
    resp = m.post(m.e("/credentials"), {"name": "wrapped", "username_variable": "prod_user",
                                         "password_variable": "prod_pass"})
    problem(resp, 403, "store_access_denied")
    assert "wrapped" not in _names(scene.admin, "/credentials")


def test_an_explicit_deny_for_the_user_wins_over_a_teams_allow(scene: Scene) -> None:
    ad, m = scene.admin, scene.mallory
    team = ad.ok(ad.post(ad.e("/teams"), {"name": "everyone", "members": [m.info["id"]]}), 201)
    ad.ok(ad.post(ad.e("/secret-stores/vault/access"), {"principal": team["id"], "allowed": True}))
    allow_store(ad, m, allowed=False)
    resp = m.post(m.e("/credentials"), {"name": "via team", "username_variable": "prod_user",
                                         "password_variable": "prod_pass"})
    problem(resp, 403, "store_access_denied")
    resp = m.post(m.e("/environment-variables"), {"schema_name": "mine", "type": "secret",
                                                   "secret_reference": {"store": "vault", "name": "prod-password"}})
    problem(resp, 403, "store_access_denied")


def test_a_credential_whose_owner_lost_the_store_delivers_nothing_at_claim(scene: Scene) -> None:
    ad, m = scene.admin, scene.mallory
    allow_store(ad, m)  # once allowed: she binds it legitimately and connects her own machine
    cred = m.credential("hers", "prod_user", "prod_pass")
    conn = m.ok(m.post(m.e("/connections"), {"name": "hers on her pc", "target": {"machine": scene.mallory_pc.id},
                                              "credential": cred["id"]}), 201)
    flow = m.ok(m.post(m.e("/desktop-flows"), {"name": "dump", "command": ["sh", "-c", "env"]}), 201)
    run = m.ok(m.post(m.e("/runs"), {"desktop_flow": flow["id"], "connection": conn["id"]}), 201)
    allow_store(ad, m, allowed=False)  # access withdrawn while the run waits
    assert scene.mallory_pc.claim() is None
    got = scene.run_status(m, run["id"])
    assert got["status"] == "failed"
    assert "store_access_denied" in got["log"]
    assert got["secret_version"] is None
