"""The worker itself: events applied out of order change nothing, and the background threads stop cleanly."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import ADMIN_TOKEN, Api
from tests.rotation.conftest import audit, connect, connection, register_machine, wait_for

from credflow.api.app import create_app
from credflow.persistence.tables import SecretEvent
from credflow.services.core import Core
from credflow.services.secrets import cache, worker
from credflow.settings import Settings


@pytest.fixture
def paused(settings: Settings) -> None:
    """No background workers: the test applies events itself, in the order it chooses."""
    settings.run_workers = False


def _apply(core: Core, version: str) -> None:
    with core.db.read() as s:
        row = s.scalar(select(SecretEvent).where(SecretEvent.version == version, SecretEvent.processed_at.is_(None)))
        assert row is not None
        pending = worker.Pending.of(row)
    plan = worker.prepare(core, pending)
    with core.db.transaction() as s:
        assert worker.apply(core, s, s.get(SecretEvent, pending.id), plan) is None


def test_builtin_events_applied_out_of_order_move_forward_only(
        paused: None, core: Core, admin: Api, cred_setup: dict[str, Any]) -> None:
    conn = connect(admin, register_machine(admin), cred_setup["credential"]["id"], "c")["id"]
    admin.secret("vault", "robot-password", "two")
    admin.secret("vault", "robot-password", "three")
    assert connection(admin, conn)["secret_version"] == "1"  # nothing applied yet
    store_id = admin.ok(admin.get(admin.e("/secret-stores/vault")))["id"]
    state = cache.vault_state(core)
    reads, checks = state.reads[store_id], state.version_checks[store_id]
    _apply(core, "3")
    _apply(core, "2")
    assert connection(admin, conn)["secret_version"] == "3"
    assert [(r["detail"]["from_version"], r["detail"]["to_version"])
            for r in audit(admin, "secret.version_changed")] == [("1", "3")]
    assert state.reads[store_id] - reads == 0  # each write cached the version it made: nothing is read back
    assert state.version_checks[store_id] - checks == 1  # and version 2, older than the head, was not asked about


def test_events_wait_durably_until_a_worker_runs(paused: None, core: Core, settings: Settings, admin: Api,
                                                 cred_setup: dict[str, Any]) -> None:
    conn = connect(admin, register_machine(admin), cred_setup["credential"]["id"], "c")["id"]
    before = admin.ok(admin.get(admin.e("/rotation")))["pending_events"]
    admin.secret("vault", "robot-password", "two")
    assert admin.ok(admin.get(admin.e("/rotation")))["pending_events"] == before + 1
    stop = worker.start(core)
    try:
        wait_for(lambda: connection(admin, conn)["secret_version"] == "2")
    finally:
        stop()
    assert admin.ok(admin.get(admin.e("/rotation")))["pending_events"] == 0


def test_the_worker_and_poller_stop_with_the_app(settings: Settings, core: Core) -> None:
    names = {"credflow-rotation-worker", "credflow-rotation-poller"}
    with TestClient(create_app(settings, core)) as http:
        assert Api(http, ADMIN_TOKEN).get("/me").status_code == 200
        assert names <= {t.name for t in threading.enumerate()}
    assert not names & {t.name for t in threading.enumerate() if t.is_alive()}
