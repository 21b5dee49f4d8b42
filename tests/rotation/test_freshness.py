"""The version cache under load and under failure: one vault read per version, 429 honoured, the last good
version serving through an outage (with its age shown) up to the bound, and status following the secret."""

from __future__ import annotations

import threading
from typing import Any

from tests.conftest import Api
from tests.rotation.conftest import (
    CountingVault,
    audit,
    connect,
    connection,
    register_machine,
    run_now,
    vault_store,
    versions,
    wait_for,
)

from credflow.persistence.tables import SecretStore
from credflow.services.core import Core
from credflow.services.secrets import cache, connection_state
from credflow.stores.base import StoreUnavailable, Throttled

NOTIFY = "/actions/NotifyEnvironmentVariableSecretChange"


def _shared_secret(admin: Api, vault: CountingVault, credentials: int, per_credential: int, poll: int = 0
                   ) -> tuple[list[str], Any]:
    vault.write("robot", "first")
    vault_store(admin, vault, poll=poll)
    admin.text_var("kv_user", "robot")
    admin.secret_var("kv_pass", "kv", "robot")
    machine = register_machine(admin)
    conns = []
    for c in range(credentials):
        cred = admin.credential(f"cred-{c}", "kv_user", "kv_pass")
        conns += [connect(admin, machine, cred["id"], f"c{c}-{i}")["id"] for i in range(per_credential)]
    return conns, machine


def test_a_rotation_reads_the_vault_once_however_many_connections_and_notices(
        admin: Api, vault: CountingVault, flow: str) -> None:
    conns, machine = _shared_secret(admin, vault, credentials=5, per_credential=4)
    vault.read_delay = 0.2
    new = vault.write("robot", "second")
    notices = [threading.Thread(target=admin.post, args=(admin.e(NOTIFY), {"KeyVaultUrl": vault.url,
                                                                           "SecretName": "robot"}))
               for _ in range(5)]
    for t in notices:
        t.start()
    for t in notices:
        t.join()
    wait_for(lambda: versions(admin, conns) == {new})
    for conn in conns[:3]:
        assert run_now(admin, machine, conn, flow)["credential"]["password"] == "second"
    assert len([r for r in vault.reads if r[1] == new]) == 1


def test_concurrent_callers_share_one_vault_read(core: Core, admin: Api, vault: CountingVault) -> None:
    vault.write("robot", "first")
    store_id = vault_store(admin, vault)["id"]
    new = vault.write("robot", "second")
    vault.read_delay = 0.3
    with core.db.read() as s:
        store = s.get(SecretStore, store_id)
        s.expunge(store)
    got: list[str] = []
    callers = [threading.Thread(target=lambda: got.append(cache.vault_read(core, store, "robot", new).value))
               for _ in range(12)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert got == ["second"] * 12 and len([r for r in vault.reads if r[1] == new]) == 1


def test_a_429_is_honoured_with_its_retry_after(admin: Api, vault: CountingVault) -> None:
    conns, _ = _shared_secret(admin, vault, credentials=1, per_credential=2)
    new = vault.write("robot", "second")
    vault.fail_reads.append(Throttled("429 Too Many Requests", retry_after=0.7))
    admin.ok(admin.post(admin.e(NOTIFY), {"KeyVaultUrl": vault.url, "SecretName": "robot"}), 202)
    wait_for(lambda: versions(admin, conns) == {new}, timeout=5)
    tries = [at for _, version, at in vault.reads if version == new]
    assert len(tries) == 2 and tries[1] - tries[0] >= 0.7


def test_an_outage_keeps_the_last_good_version_serving_then_stops_at_the_bound(
        core: Core, admin: Api, vault: CountingVault, flow: str) -> None:
    core.settings.stale_if_error_seconds = 3
    conns, machine = _shared_secret(admin, vault, credentials=1, per_credential=1, poll=1)
    conn = conns[0]
    assert connection(admin, conn)["secret_stale_since"] is None
    vault.failure = StoreUnavailable("the vault does not answer")
    stale = wait_for(lambda: (c := connection(admin, conn))["secret_stale_since"] and c, timeout=4)
    assert stale["status"] == "connected" and stale["secret_error"] == "store_unavailable"
    assert stale["secret_age_seconds"] >= 0
    assert run_now(admin, machine, conn, flow)["credential"]["password"] == "first"
    record = audit(admin, "secret.stale")[0]["detail"]
    assert record["secret_stale_since"] == stale["secret_stale_since"] and record["serving_version"]
    wait_for(lambda: connection(admin, conn)["status"] == "secret_unreadable", timeout=6)
    bound = audit(admin, "secret.unreadable")[-1]["detail"]
    assert bound["reason"] == "stale_bound_exceeded" and bound["secret_age_seconds"] >= 3
    vault.failure = None
    wait_for(lambda: (c := connection(admin, conn))["status"] == "connected" and not c["secret_stale_since"],
             timeout=4)
    assert run_now(admin, machine, conn, flow)["credential"]["password"] == "first"


def test_a_deleted_secret_stops_its_connections_and_a_restored_one_resumes(
        admin: Api, vault: CountingVault) -> None:
    conns, _ = _shared_secret(admin, vault, credentials=2, per_credential=2, poll=1)
    kept = vault.delete("robot")
    wait_for(lambda: {connection(admin, c)["status"] for c in conns} == {"secret_unreadable"}, timeout=4)
    assert connection(admin, conns[0])["secret_error"] == "secret_not_found"
    vault.restore("robot", kept)
    wait_for(lambda: {connection(admin, c)["status"] for c in conns} == {"connected"}, timeout=4)


def test_an_unreadable_secret_turns_connected_again_with_a_new_version(admin: Api, cred_setup: dict[str, Any],
                                                                        core: Core) -> None:
    conn = connect(admin, register_machine(admin), cred_setup["credential"]["id"], "c")["id"]
    with core.db.transaction() as s:
        store = s.get(SecretStore, admin.ok(admin.get(admin.e("/secret-stores/vault")))["id"])
        connection_state.unreadable(s, store, ["robot-password"], "secret_not_found")
    assert connection(admin, conn)["status"] == "secret_unreadable"
    admin.secret("vault", "robot-password", "back")
    wait_for(lambda: (c := connection(admin, conn))["status"] == "connected" and c["secret_version"] == "2")


def test_rotation_status_shows_what_credflow_holds(admin: Api, cred_setup: dict[str, Any]) -> None:
    connect(admin, register_machine(admin), cred_setup["credential"]["id"], "c")
    admin.secret("vault", "robot-password", "two")
    # The head moves when the vault is read; the event is done once its connections have moved too.
    got = wait_for(lambda: (st := admin.ok(admin.get(admin.e("/rotation"))))["secrets"][0]["current_version"] == "2"
                   and st["pending_events"] == 0 and st)
    assert got["secrets"][0]["connections"] == 1
    assert got["stores"][0]["vault_reads"] >= 1
    assert "value" not in str(got)
    maker = admin.user("basic", "basic_user")
    assert maker.get(maker.e("/rotation")).status_code == 403
