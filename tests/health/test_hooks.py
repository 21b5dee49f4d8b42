"""Notification hooks through the real API and a real local HTTP server: a signed POST when a finding appears and
when it clears, retried when the receiver fails, never sent twice across a restart, never with a secret value."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from credflow.api.app import create_app
from credflow.services.core import Core
from credflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, Api, problem
from tests.health.conftest import Receiver, iso

CANARY = "canary-Pa55word-7f3e1c"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The test settings, hooks told every 0.2 s."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url, bootstrap_token=ADMIN_TOKEN,
                    run_workers=True, health_notify_interval_seconds=0.2)


def _expired_credential(admin: Api, name: str) -> dict[str, Any]:
    admin.ok(admin.put(admin.e(f"/secret-stores/vault/secrets/{name}"),
                       {"value": CANARY, "expires_at": "2020-01-01T00:00:00Z"}))
    var = name.replace("-", "_")
    admin.text_var(f"{var}_user", "robot")
    admin.secret_var(f"{var}_pass", "vault", name)
    return admin.credential(name, f"{var}_user", f"{var}_pass")


def _verified(delivery: dict[str, Any], secret: str) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    stamp, body = headers["x-credflow-timestamp"], delivery["body"]
    want = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-credflow-signature"], want)
    assert abs(int(stamp) - int(datetime.now(UTC).timestamp())) < 300
    assert CANARY.encode() not in body
    return json.loads(body)  # type: ignore[no-any-return]


def test_a_hook_is_told_signed_when_a_finding_appears_and_clears(admin: Api, receiver: Receiver) -> None:
    admin.store("vault")
    hook = admin.ok(admin.post(admin.e("/notification-hooks"), {"url": receiver.url, "min_severity": "warning"}),
                    201)
    assert hook["min_severity"] == "warning" and hook["secret"]
    listed = admin.ok(admin.get(admin.e("/notification-hooks")))["items"]
    assert listed == [{k: v for k, v in hook.items() if k != "secret"}]
    assert "secret-part" not in json.dumps(listed) and hook["secret"] not in json.dumps(listed)

    cred = _expired_credential(admin, "robot-pw")
    message = _verified(receiver.next(), hook["secret"])
    assert message["event"] == "finding.appeared"
    assert (message["finding"]["kind"], message["finding"]["credential"]) == ("expired", cred["id"])
    assert message["text"].startswith("[credflow") and "expired" in message["text"]
    assert message["@type"] == "MessageCard" and message["summary"]

    later = iso(datetime.now(UTC) + timedelta(days=365))
    admin.ok(admin.put(admin.e("/secret-stores/vault/secrets/robot-pw"), {"value": CANARY, "expires_at": later}))
    cleared = _verified(receiver.next(), hook["secret"])
    assert cleared["event"] == "finding.cleared" and cleared["finding"]["id"] == message["finding"]["id"]


def test_a_failed_post_is_retried_and_told_once(admin: Api, receiver: Receiver) -> None:
    admin.store("vault")
    receiver.fail = 1
    hook = admin.ok(admin.post(admin.e("/notification-hooks"), {"url": receiver.url, "min_severity": "critical"}),
                    201)
    _expired_credential(admin, "robot-pw")
    first, second = receiver.next(), receiver.next()
    assert (first["answered"], second["answered"]) == (500, 200)
    assert _verified(first, hook["secret"])["finding"] == _verified(second, hook["secret"])["finding"]


def test_a_restart_does_not_tell_a_hook_again(admin: Api, receiver: Receiver, core: Core, settings: Settings
                                              ) -> None:
    admin.store("vault")
    hook = admin.ok(admin.post(admin.e("/notification-hooks"), {"url": receiver.url, "min_severity": "critical"}),
                    201)
    old = _expired_credential(admin, "old-pw")
    assert _verified(receiver.next(), hook["secret"])["finding"]["credential"] == old["id"]
    admin.http.__exit__(None, None, None)  # the server stops ...

    with TestClient(create_app(settings, core)) as again:  # ... and starts again on the same database
        api = Api(again, ADMIN_TOKEN, admin.env)
        new = _expired_credential(api, "new-pw")
        told = _verified(receiver.next(), hook["secret"])
        assert (told["event"], told["finding"]["credential"]) == ("finding.appeared", new["id"])
        api.ok(api.delete(api.e(f"/credentials/{new['id']}")), 204)
        told = _verified(receiver.next(), hook["secret"])
        assert (told["event"], told["finding"]["credential"]) == ("finding.cleared", new["id"])
    assert receiver.got.empty()  # two rounds after the restart, the old finding was not told again


def test_deleting_a_hook_stops_it(admin: Api, receiver: Receiver) -> None:
    admin.store("vault")
    hook = admin.ok(admin.post(admin.e("/notification-hooks"), {"url": receiver.url}), 201)
    assert hook["min_severity"] == "warning"
    admin.ok(admin.delete(admin.e(f"/notification-hooks/{hook['id']}")), 204)
    assert admin.ok(admin.get(admin.e("/notification-hooks")))["items"] == []
    assert admin.delete(admin.e(f"/notification-hooks/{hook['id']}")).status_code == 404
    problem(admin.get(admin.e("/notification-hooks"), params={"cursor": "not-one"}), 400, "malformed_cursor")
