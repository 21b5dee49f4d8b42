"""A credential on an OpenBao secret, end to end: connection -> run gets the value -> `bao kv put` a new
version -> the next run gets it, by notify and by polling."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.conftest import Api
from tests.machines.conftest import connection, desktop_flow, queue, register
from tests.stores.conftest import OpenBao


def _wait_for_version(admin: Api, conn_id: str, version: str, within: float = 8.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if admin.ok(admin.get(admin.e(f"/connections/{conn_id}")))["secret_version"] == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"the connection never reached version {version}")


def test_a_rotated_openbao_password_reaches_the_next_run(admin: Api, openbao: OpenBao) -> None:
    path = f"robots/{uuid.uuid4().hex[:8]}"
    kv = openbao.root().secrets.kv.v2
    kv.create_or_update_secret(path=path, secret={"value": "bao-pw-1"})
    admin.store("bao", kind="hashicorp-vault", vault_url=openbao.address,
                config={"address": openbao.address, "token": openbao.root_token, "poll_interval_seconds": 1})
    admin.text_var("robot_user", "robot@corp.example")
    admin.secret_var("robot_pass", "bao", path)
    cred = admin.credential("Bao login", "robot_user", "robot_pass")
    machine = register(admin, "pc-1")
    flow = desktop_flow(admin)
    conn = connection(admin, "bao conn", {"machine": machine.id}, credential=cred["id"])
    assert conn["secret_version"] == "1"

    def next_run_gets() -> dict[str, Any]:
        queue(admin, flow["id"], conn["id"])
        job = machine.job(wait=5)
        assert job is not None
        got = machine.open(job)
        assert machine.finish(job["run_id"]).status_code == 200
        return got

    assert next_run_gets() == {"username": "robot@corp.example", "password": "bao-pw-1", "version": "1"}

    # Notify, as the seed's Event Grid flow does.
    kv.create_or_update_secret(path=path, secret={"value": "bao-pw-2"})
    resp = admin.post(admin.e("/actions/NotifyEnvironmentVariableSecretChange"),
                      {"KeyVaultUrl": openbao.address + "/", "SecretName": path})
    assert resp.status_code == 202 and resp.json() == {"accepted": True, "connections": 1}
    _wait_for_version(admin, conn["id"], "2", within=2)
    assert next_run_gets()["password"] == "bao-pw-2"

    # Polling: nobody says anything; the reconciler notices within its interval.
    kv.create_or_update_secret(path=path, secret={"value": "bao-pw-3"})
    _wait_for_version(admin, conn["id"], "3")
    got = next_run_gets()
    assert (got["password"], got["version"]) == ("bao-pw-3", "3")
