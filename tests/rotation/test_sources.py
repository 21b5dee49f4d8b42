"""Every source of change reaches the connections: builtin writes, the seed's notify action (with a system
administrator's reach or only the caller's), polling, and a changed secret reference."""

from __future__ import annotations

import time
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

NOTIFY = "/actions/NotifyEnvironmentVariableSecretChange"


def test_a_builtin_write_reaches_every_connection_and_the_next_run_within_a_second(
        admin: Api, cred_setup: dict[str, Any], flow: str) -> None:
    machine = register_machine(admin)
    conns = [connect(admin, machine, cred_setup["credential"]["id"], f"c{i}")["id"] for i in range(3)]
    assert versions(admin, conns) == {"1"}
    started = time.monotonic()
    assert admin.secret("vault", "robot-password", "N3w-Pa55word!")["version"] == "2"
    wait_for(lambda: versions(admin, conns) == {"2"}, timeout=1.0)
    assert time.monotonic() - started < 1.0
    job = run_now(admin, machine, conns[0], flow)
    assert job["credential"]["password"] == "N3w-Pa55word!" and job["credential"]["version"] == "2"
    changed = audit(admin, "secret.version_changed")
    assert [(r["detail"]["from_version"], r["detail"]["to_version"], r["detail"]["credentials_following"])
            for r in changed] == [("1", "2", 1)]  # the credential of the three: each of them follows it
    assert "connections_updated" not in changed[0]["detail"]  # not counted one by one: none was written


def _vault_credential(admin: Api, vault: CountingVault, poll: int = 0) -> dict[str, Any]:
    vault.write("robot", "first-password")
    vault_store(admin, vault, poll=poll)
    admin.text_var("kv_user", "robot@corp.example")
    admin.secret_var("kv_pass", "kv", "robot")
    return admin.credential("KV login", "kv_user", "kv_pass")


def test_notify_by_a_system_administrator_refreshes_every_connection(
        admin: Api, vault: CountingVault, flow: str) -> None:
    cred = _vault_credential(admin, vault)
    machine = register_machine(admin)
    maker = admin.user("maker", "environment_maker")
    admin.ok(admin.put(admin.e(f"/credentials/{cred['id']}/shares/{maker.info['id']}"), {"role": "user"}))
    mine = connect(admin, machine, cred["id"], "admin-conn")["id"]
    theirs = connect(maker, machine, cred["id"], "maker-conn")["id"]
    new = vault.write("robot", "second-password")
    time.sleep(0.3)
    assert new not in versions(admin, [mine, theirs])  # the vault sends no events: nothing moved by itself
    assert admin.ok(admin.post(admin.e(NOTIFY), {"KeyVaultUrl": vault.url + "/", "SecretName": "robot"}),
                    202) == {"accepted": True, "connections": 2}
    wait_for(lambda: versions(admin, [mine, theirs]) == {new})
    assert run_now(maker, machine, theirs, flow)["credential"]["password"] == "second-password"


def test_notify_by_anyone_else_refreshes_only_their_own_connections(
        admin: Api, vault: CountingVault, flow: str) -> None:
    cred = _vault_credential(admin, vault)
    machine = register_machine(admin)
    maker = admin.user("maker", "environment_maker")
    admin.ok(admin.put(admin.e(f"/credentials/{cred['id']}/shares/{maker.info['id']}"), {"role": "user"}))
    mine = connect(admin, machine, cred["id"], "admin-conn")
    theirs = connect(maker, machine, cred["id"], "maker-conn")["id"]
    old = mine["secret_version"]
    new = vault.write("robot", "second-password")
    assert maker.ok(maker.post(maker.e(NOTIFY), {"KeyVaultUrl": vault.url.upper(), "SecretName": " robot "}),
                    202) == {"accepted": True, "connections": 1}
    wait_for(lambda: connection(maker, theirs)["secret_version"] == new)
    time.sleep(0.3)
    assert connection(admin, mine["id"])["secret_version"] == old
    assert run_now(maker, machine, theirs, flow)["credential"]["password"] == "second-password"
    assert run_now(admin, machine, mine["id"], flow)["credential"]["password"] == "first-password"
    notice = audit(admin, "rotation.notify")[-1]
    assert notice["detail"]["reach"] == "own_connections" and notice["actor"] == f"user:{maker.info['id']}"


def test_notify_names_the_vault_by_url_or_by_the_event_grid_topic(admin: Api, vault: CountingVault) -> None:
    cred = _vault_credential(admin, vault)
    conn = connect(admin, register_machine(admin), cred["id"], "c")["id"]
    vault_name = vault.url.split("//")[1].split(".")[0]
    topic = f"/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/{vault_name.upper()}"
    for vault_ref in (topic, "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"):
        new = vault.write("robot", f"pw-{vault_ref[-3:]}")
        admin.ok(admin.post(admin.e(NOTIFY), {"KeyVaultUrl": vault_ref, "SecretName": "robot"}), 202)
        wait_for(lambda v=new: connection(admin, conn)["secret_version"] == v)  # type: ignore[misc]


def test_notify_for_a_vault_no_store_is_says_so_and_needs_both_fields(admin: Api, vault: CountingVault) -> None:
    _vault_credential(admin, vault)
    resp = admin.post(admin.e(NOTIFY), {"KeyVaultUrl": "https://other.vault.azure.net", "SecretName": "robot"})
    assert resp.status_code == 404 and resp.json()["code"] == "store_not_found"
    assert admin.post(admin.e(NOTIFY), {"KeyVaultUrl": vault.url}).status_code == 422
    assert admin.post(admin.e(NOTIFY), {"KeyVaultUrl": vault.url, "SecretName": "   "}).status_code == 422


def test_polling_finds_a_new_version_of_a_vault_that_sends_no_events(admin: Api, vault: CountingVault) -> None:
    cred = _vault_credential(admin, vault, poll=1)
    conn = connect(admin, register_machine(admin), cred["id"], "c")["id"]
    new = vault.write("robot", "polled-password")
    wait_for(lambda: connection(admin, conn)["secret_version"] == new, timeout=4)
    assert [r["detail"]["source"] for r in audit(admin, "secret.version_changed")] == ["poll"]
    assert sum(1 for name, version, _ in vault.reads if version == new) == 1


def test_pointing_a_variable_at_another_secret_moves_the_connections(admin: Api, cred_setup: dict[str, Any]) -> None:
    conn = connect(admin, register_machine(admin), cred_setup["credential"]["id"], "c")["id"]
    admin.secret("vault", "other-password", "x")
    admin.secret("vault", "other-password", "y")
    admin.ok(admin.patch(admin.e("/environment-variables/robot_pass"),
                         {"secret_reference": {"store": "vault", "name": "other-password"}}))
    assert connection(admin, conn)["secret_version"] == "2"
    admin.ok(admin.patch(admin.e("/environment-variables/robot_pass"),
                         {"secret_reference": {"store": "vault", "name": "other-password", "version": "1"}}))
    assert connection(admin, conn)["secret_version"] == "1"
    admin.secret("vault", "other-password", "z")  # a pinned version does not follow rotation
    time.sleep(0.3)
    assert connection(admin, conn)["secret_version"] == "1"
