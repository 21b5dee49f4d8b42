"""The health page and notification hooks, attacked: another maker, a machine and no token are refused; a maker
sees only the findings of what she may list; no secret value is in a health answer or a hook's POST; a hook cannot
point at a link-local address; a hook's URL and signing secret are never shown again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from credflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, problem
from tests.health.conftest import Receiver, wait_for
from tests.security.conftest import PASSWORD, Scene


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The test settings, hooks told every 0.2 s."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url, bootstrap_token=ADMIN_TOKEN,
                    run_workers=True, health_notify_interval_seconds=0.2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _expire(scene: Scene) -> None:
    """A new version of the production password, past its expiry: alice's credential is expired."""
    scene.admin.ok(scene.admin.put(scene.admin.e("/secret-stores/vault/secrets/prod-password"),
                                   {"value": PASSWORD, "expires_at": "2020-01-01T00:00:00Z"}))
    wait_for(lambda: scene.alice.ok(scene.alice.get(scene.alice.e("/health")))["counts"]["critical"] == 1)


def test_another_maker_does_not_see_the_findings_of_what_she_cannot_list(scene: Scene) -> None:
    _expire(scene)
    alice = scene.alice.ok(scene.alice.get(scene.alice.e("/health")))
    assert {(f["kind"], f["credential"]) for f in alice["items"]} == {("expired", scene.cred["id"])}
    mallory = scene.mallory.ok(scene.mallory.get(scene.mallory.e("/health")))
    assert mallory == {"items": [], "counts": {"critical": 0, "warning": 0, "info": 0}}
    admin = scene.admin.ok(scene.admin.get(scene.admin.e("/health")))
    assert ("expired", scene.cred["id"]) in {(f["kind"], f.get("credential")) for f in admin["items"]}
    for body in (alice, admin):
        assert PASSWORD not in json.dumps(body)


def test_a_maker_may_not_make_list_or_delete_hooks(scene: Scene) -> None:
    hook = scene.admin.ok(scene.admin.post(scene.admin.e("/notification-hooks"),
                                           {"url": "http://127.0.0.1:9/services/T0/B0/x"}), 201)
    mallory = scene.mallory
    problem(mallory.post(mallory.e("/notification-hooks"), {"url": "https://evil.example/collect"}), 403)
    problem(mallory.get(mallory.e("/notification-hooks")), 403)
    problem(mallory.delete(mallory.e(f"/notification-hooks/{hook['id']}")), 403)
    listed = scene.admin.ok(scene.admin.get(scene.admin.e("/notification-hooks")))["items"]
    assert [h["id"] for h in listed] == [hook["id"]]


def test_a_machine_and_no_token_are_refused(scene: Scene) -> None:
    machine = scene.mallory_pc.api
    for path in ("/health", "/notification-hooks"):
        problem(machine.get(machine.e(path)), 403, "machine_token_not_allowed")
        assert scene.admin.http.get(f"/api/v1/environments/{scene.admin.env}{path}").status_code == 401
    problem(machine.post(machine.e("/notification-hooks"), {"url": "https://evil.example/x"}), 403,
            "machine_token_not_allowed")
    assert scene.admin.http.post(f"/api/v1/environments/{scene.admin.env}/notification-hooks",
                                 json={"url": "https://evil.example/x"}).status_code == 401


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]/hook",
                                 "http://2852039166/hook", "http://[::ffff:169.254.169.254]/hook"])
def test_a_hook_may_not_point_at_a_link_local_address(scene: Scene, url: str) -> None:
    problem(scene.admin.post(scene.admin.e("/notification-hooks"), {"url": url}), 422, "link_local_address")
    assert scene.admin.ok(scene.admin.get(scene.admin.e("/notification-hooks")))["items"] == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "https://user:pw@example.com/h", "not a url",
                                 "http://"])
def test_a_hook_url_must_be_http(scene: Scene, url: str) -> None:
    problem(scene.admin.post(scene.admin.e("/notification-hooks"), {"url": url}), 422, "invalid_url")


def test_a_hooks_post_holds_no_secret_and_its_url_and_secret_are_shown_once(scene: Scene,
                                                                              receiver: Receiver) -> None:
    hook = scene.admin.ok(scene.admin.post(scene.admin.e("/notification-hooks"),
                                           {"url": receiver.url, "min_severity": "info"}), 201)
    _expire(scene)
    got = receiver.next()
    assert PASSWORD.encode() not in got["body"] and json.loads(got["body"])["event"] == "finding.appeared"
    shown = json.dumps([scene.admin.ok(scene.admin.get(scene.admin.e("/notification-hooks"))),
                        scene.admin.ok(scene.admin.get(scene.admin.e("/audit"), params={"limit": 500}))])
    assert hook["secret"] not in shown and "secret-part" not in shown
