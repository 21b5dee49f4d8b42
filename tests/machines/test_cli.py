"""The automation commands of the CLI: machines, groups, desktop flows, connections, runs and cloud flows."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.machines.conftest import Machine, register


def test_machines_flows_connections_and_runs_from_the_cli(cli: Any, admin: Api, cred_setup: dict[str, Any],
                                                          machine: Machine) -> None:
    assert cli("machine-registration", "create", "--json")["registration_token"].startswith("cfr_")
    assert [m["name"] for m in cli("machine", "list", "--json")] == ["robot-pc-1"]
    other = register(admin, "robot-pc-2")
    group = cli("machine-group", "create", "pool", "--machine", "robot-pc-1", "--machine", other.id, "--json")
    assert sorted(group["machines"]) == sorted([machine.id, other.id])
    flow = cli("desktop-flow", "create", "robot", "--json", "--", "python3", "-c", "print(1)")
    assert flow["command"] == ["python3", "-c", "print(1)"]
    typed = cli("connection", "create", "typed", "--group", "pool", "--username", "svc", "--password-stdin",
                "--json", input="Typed-Pa55!\n")
    assert typed["target"] == {"machine_group": group["id"]} and typed["auth"] == "username_password"
    with_cred = cli("connection", "create", "robot", "--machine", "robot-pc-1", "--credential",
                    cred_setup["credential"]["id"], "--json")
    assert with_cred["status"] == "connected" and with_cred["secret_version"] == "1"
    started = cli("run", "start", "--flow", "robot", "--connection", with_cred["id"], "--json")
    assert started["status"] == "queued"
    assert [r["id"] for r in cli("run", "list", "--json")] == [started["id"]]
    job = machine.job()
    assert job is not None and machine.open(job)["password"] == "S3cr3t-Pa55word!"
    assert cli("run", "cancel", started["id"], "--json")["status"] == "cancelled"
    cli("connection-reference", "create", "ref", "--connection", with_cred["id"])
    made = cli("cloud-flow", "create", "nightly", "--action", "robot=ref", "--cron", "0 3 * * *", "--json")
    assert made["trigger"] == {"type": "schedule", "cron": "0 3 * * *"} and made["next_fire_at"].endswith("03:00:00Z")
    assert [r["cloud_flow"] for r in cli("cloud-flow", "run", "nightly", "--json")] == [made["id"]]
