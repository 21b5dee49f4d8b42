"""The attacker's world, built over the HTTP API: a victim who owns a production credential and everything a
run needs, and a hostile colleague with a maker's role, a machine of her own and no share.

Each test acts as the attacker through the real API and asserts two things a user would see: the attempt is
refused (or the run fails without a delivery), and the victim's objects are unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from nacl.public import PrivateKey

from credflow.crypto.sealing import open_sealed
from tests.conftest import Api, new_machine

PASSWORD = "Pr0duction-Pa55word!"


@dataclass
class Machine:
    api: Api
    id: str
    key: PrivateKey

    def claim(self) -> dict[str, Any] | None:
        resp = self.api.post("/machines/me/jobs/claim", params={"wait": 0})
        assert resp.status_code in (200, 204), resp.text
        return resp.json() if resp.status_code == 200 else None

    def opened(self, job: dict[str, Any]) -> dict[str, Any]:
        return json.loads(open_sealed(self.key, job["sealed_credential"]))  # type: ignore[no-any-return]

    def finish(self, run_id: str) -> None:
        resp = self.api.post(f"/machines/me/jobs/{run_id}/result", {"exit_code": 0, "log": "done\n"})
        assert resp.status_code == 200, resp.text


@dataclass
class Scene:
    admin: Api
    alice: Api  # the victim: a maker allowed on the store, owner of the production credential
    mallory: Api  # the attacker: a maker with no share and no store access
    alice_pc: Machine
    mallory_pc: Machine
    cred: dict[str, Any]
    flow: dict[str, Any]  # alice's desktop flow
    conn: dict[str, Any]  # alice's connection on her machine, with the credential
    group: dict[str, Any]  # alice's machine group (her machine)
    group_conn: dict[str, Any]  # alice's connection on her group
    ref: dict[str, Any]  # alice's connection reference, bound to her connection
    cloud_flow: dict[str, Any]  # alice's cloud flow

    def run_status(self, api: Api, run_id: str) -> dict[str, Any]:
        return api.ok(api.get(api.e(f"/runs/{run_id}")))  # type: ignore[no-any-return]

    def never_delivered(self, machine: Machine) -> None:
        """Whatever the machine claims now holds no sealed box with the production password."""
        for _ in range(5):
            job = machine.claim()
            if job is None:
                return
            assert PASSWORD not in json.dumps(machine.opened(job))
            machine.finish(job["run_id"])


def machine_of(api: Api, name: str) -> Machine:
    return Machine(*new_machine(api, name))


def allow_store(admin: Api, user: Api, allowed: bool = True, store: str = "vault") -> None:
    admin.ok(admin.post(admin.e(f"/secret-stores/{store}/access"), {"principal": user.info["id"],
                                                                    "allowed": allowed}))


@pytest.fixture
def scene(admin: Api) -> Scene:
    admin.store("vault")
    admin.secret("vault", "prod-password", PASSWORD)
    alice = admin.user("alice", "environment_maker")
    mallory = admin.user("mallory", "environment_maker")
    allow_store(admin, alice)
    alice.text_var("prod_user", "svc-prod@corp.example")
    alice.secret_var("prod_pass", "vault", "prod-password")
    cred = alice.credential("Production login", "prod_user", "prod_pass")
    alice_pc, mallory_pc = machine_of(alice, "alice-pc"), machine_of(mallory, "mallory-pc")
    flow = alice.ok(alice.post(alice.e("/desktop-flows"), {"name": "invoice-bot", "command": ["robot", "--go"]}),
                    201)
    conn = alice.ok(alice.post(alice.e("/connections"), {"name": "prod on alice-pc",
                                                          "target": {"machine": alice_pc.id},
                                                          "credential": cred["id"]}), 201)
    group = alice.ok(alice.post(alice.e("/machine-groups"), {"name": "alice-pool", "machines": [alice_pc.id]}),
                     201)
    group_conn = alice.ok(alice.post(alice.e("/connections"), {"name": "prod on alice-pool",
                                                                "target": {"machine_group": group["id"]},
                                                                "credential": cred["id"]}), 201)
    ref = alice.ok(alice.post(alice.e("/connection-references"), {"name": "prod-ref", "connection": conn["id"]}),
                   201)
    cloud_flow = alice.ok(alice.post(alice.e("/cloud-flows"), {
        "name": "nightly", "trigger": {"type": "manual"},
        "actions": [{"type": "run_desktop_flow", "desktop_flow": flow["id"], "connection_reference": ref["id"]}]}),
        201)
    return Scene(admin, alice, mallory, alice_pc, mallory_pc, cred, flow, conn, group, group_conn, ref, cloud_flow)
