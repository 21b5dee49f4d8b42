"""The NotifyEnvironmentVariableSecretChange action says how many connections it moves, of the caller's reach,
and refuses what cannot name a vault or a secret with a 422, on every database."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, new_machine, problem

NOTIFY = "/actions/NotifyEnvironmentVariableSecretChange"
VAULT = "builtin://default/vault"


def _connect(api: Api, machine_id: str, cred_id: str, name: str) -> dict[str, Any]:
    body = {"name": name, "target": {"machine": machine_id}, "credential": cred_id}
    return api.ok(api.post(api.e("/connections"), body), 201)  # type: ignore[no-any-return]


def _notify(api: Api, secret: str = "robot-password", vault: str = VAULT) -> Any:
    return api.post(api.e(NOTIFY), {"KeyVaultUrl": vault, "SecretName": secret})


def test_a_notice_counts_the_connections_of_the_callers_reach(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    _, machine_id, _ = new_machine(admin, "pc-1")
    mia, bob = admin.user("mia", "environment_maker"), admin.user("bob", "basic_user")
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/{mia.info['id']}"), {"role": "user"}))
    _connect(admin, machine_id, cid, "admin's")
    _connect(mia, machine_id, cid, "mia's")
    _connect(mia, machine_id, cid, "mia's second")
    assert admin.ok(_notify(admin), 202) == {"accepted": True, "connections": 3}
    assert mia.ok(_notify(mia), 202) == {"accepted": True, "connections": 2}
    assert bob.ok(_notify(bob), 202) == {"accepted": True, "connections": 0}
    assert admin.ok(_notify(admin, "no-such-secret"), 202) == {"accepted": True, "connections": 0}
    notices = admin.ok(admin.get(admin.e("/audit"), params={"action": "rotation.notify"}))["items"]
    assert [n["detail"]["connections"] for n in notices] == [3, 2, 0, 0]


def test_a_notice_counts_fields_of_the_secret_but_not_pinned_versions(admin: Api,
                                                                     cred_setup: dict[str, Any]) -> None:
    admin.secret("vault", "robot-password", '{"value": "v", "pin": "p"}')
    _, machine_id, _ = new_machine(admin, "pc-1")
    admin.secret_var("field_pass", "vault", "robot-password#pin")
    admin.secret_var("pinned_pass", "vault", "robot-password", version="1")
    field = admin.credential("Field login", "robot_user", "field_pass")
    pinned = admin.credential("Pinned login", "robot_user", "pinned_pass")
    for cred in (cred_setup["credential"], field, pinned):
        _connect(admin, machine_id, cred["id"], cred["name"])
    assert admin.ok(_notify(admin), 202)["connections"] == 2  # the pinned one never moves


@pytest.mark.parametrize(("body", "code"), [
    ({"KeyVaultUrl": "http://[::1", "SecretName": "robot-password"}, "malformed_vault_url"),
    ({"KeyVaultUrl": "https://kv.vault.azure.net\x00", "SecretName": "robot-password"}, "malformed_vault_url"),
    ({"KeyVaultUrl": VAULT, "SecretName": "robot\x00password"}, "malformed_secret_name"),
    ({"KeyVaultUrl": VAULT, "SecretName": "robot\npassword"}, "malformed_secret_name"),
    ({"KeyVaultUrl": " ", "SecretName": "robot-password"}, "missing_fields"),
])
def test_a_notice_that_cannot_name_a_vault_or_secret_is_refused(admin: Api, cred_setup: dict[str, Any],
                                                                body: dict[str, str], code: str) -> None:
    before = admin.ok(admin.get(admin.e("/audit"), params={"action": "rotation.notify"}))["items"]
    got = problem(admin.post(admin.e(NOTIFY), body), 422, code)
    assert "\x00" not in str(got) and "[::1" not in got["detail"]
    assert admin.ok(admin.get(admin.e("/audit"), params={"action": "rotation.notify"}))["items"] == before
