"""Cloud flows: run_desktop_flow actions through connection references, run by hand or on a cron schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from credflow.services.automation import cloud_flows as cloud_flows_service
from tests.conftest import Api, problem
from tests.machines.conftest import desktop_flow, run


def _flow(admin: Api, name: str, actions: list[tuple[str, str]], trigger: dict[str, Any] | None = None) -> Any:
    body = {"name": name, "trigger": trigger or {"type": "manual"},
            "actions": [{"type": "run_desktop_flow", "desktop_flow": f, "connection_reference": r}
                        for f, r in actions]}
    return admin.post(admin.e("/cloud-flows"), body)


def test_running_a_cloud_flow_queues_a_run_per_action_on_the_bound_connection(admin: Api,
                                                                             setup: dict[str, Any]) -> None:
    other = desktop_flow(admin, "report-flow", ["report"])
    ref = admin.ok(admin.post(admin.e("/connection-references"), {"name": "robot-ref",
                                                                  "connection": setup["connection"]["id"]}), 201)
    assert ref["connection"] == setup["connection"]["id"]
    flow = admin.ok(_flow(admin, "nightly", [("login-flow", "robot-ref"), (other["id"], ref["id"])]), 201)
    assert [a["desktop_flow"] for a in flow["actions"]] == [setup["flow"]["id"], other["id"]]
    started = admin.ok(admin.post(admin.e(f"/cloud-flows/{flow['id']}/run")), 201)
    assert [(r["desktop_flow"], r["connection"], r["status"], r["cloud_flow"]) for r in started["runs"]] == [
        (setup["flow"]["id"], setup["connection"]["id"], "queued", flow["id"]),
        (other["id"], setup["connection"]["id"], "queued", flow["id"])]
    job = setup["machine"].job()
    assert job is not None and job["run_id"] == started["runs"][0]["id"]
    assert setup["machine"].open(job)["password"] == "S3cr3t-Pa55word!"


def test_an_unbound_reference_queues_nothing(admin: Api, setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/connection-references"), {"name": "bound", "connection": setup["connection"]["id"]}),
             201)
    admin.ok(admin.post(admin.e("/connection-references"), {"name": "empty"}), 201)
    flow = admin.ok(_flow(admin, "f", [("login-flow", "bound"), ("login-flow", "empty")]), 201)
    problem(admin.post(admin.e(f"/cloud-flows/{flow['id']}/run")), 422, "connection_reference_unbound")
    assert admin.ok(admin.get(admin.e("/runs")))["items"] == []
    admin.ok(admin.patch(admin.e("/connection-references/empty"), {"connection": setup["connection"]["id"]}))
    assert len(admin.ok(admin.post(admin.e("/cloud-flows/f/run")), 201)["runs"]) == 2


def test_a_cloud_flow_names_existing_flows_references_and_a_valid_trigger(admin: Api, setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/connection-references"), {"name": "ref"}), 201)
    problem(_flow(admin, "a", [("nope", "ref")]), 404, "desktop_flow_not_found")
    problem(_flow(admin, "a", [("login-flow", "nope")]), 404, "connection_reference_not_found")
    problem(_flow(admin, "a", [("login-flow", "ref")], {"type": "schedule", "cron": "every day"}), 422,
            "invalid_cron")
    problem(_flow(admin, "a", [("login-flow", "ref")], {"type": "webhook"}), 422, "invalid_trigger")
    problem(_flow(admin, "a", []), 422, "invalid_actions")
    assert admin.ok(admin.get(admin.e("/cloud-flows")))["items"] == []


def test_a_scheduled_cloud_flow_runs_when_its_time_comes(admin: Api, setup: dict[str, Any], core: Any) -> None:
    admin.ok(admin.post(admin.e("/connection-references"), {"name": "ref", "connection": setup["connection"]["id"]}),
             201)
    flow = admin.ok(_flow(admin, "hourly", [("login-flow", "ref")], {"type": "schedule", "cron": "0 * * * *"}), 201)
    due = datetime.fromisoformat(flow["next_fire_at"])
    assert due.minute == 0 and due.second == 0
    assert cloud_flows_service.fire_due(core, now=due - timedelta(seconds=1)) == 0
    assert cloud_flows_service.fire_due(core, now=due) == 1
    assert cloud_flows_service.fire_due(core, now=due) == 0  # fired once, however often the scheduler looks
    queued = admin.ok(admin.get(admin.e("/runs"), params={"cloud_flow": flow["id"]}))["items"]
    assert len(queued) == 1 and queued[0]["created_by"] == flow["owner"]
    after = admin.ok(admin.get(admin.e(f"/cloud-flows/{flow['id']}")))
    assert datetime.fromisoformat(after["next_fire_at"]) > due
    assert run(admin, queued[0]["id"])["status"] == "queued"


def test_a_reference_in_use_cannot_be_deleted(admin: Api, setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/connection-references"), {"name": "ref"}), 201)
    admin.ok(_flow(admin, "f", [("login-flow", "ref")]), 201)
    problem(admin.delete(admin.e("/connection-references/ref")), 409, "in_use")
    problem(admin.delete(admin.e("/desktop-flows/login-flow")), 409, "in_use")
    assert admin.delete(admin.e("/cloud-flows/f")).status_code == 204
    assert admin.delete(admin.e("/connection-references/ref")).status_code == 204


def test_basic_users_do_not_create_or_run_cloud_flows(admin: Api, setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/connection-references"), {"name": "ref"}), 201)
    admin.ok(_flow(admin, "f", [("login-flow", "ref")]), 201)
    bob = admin.user("bob", "basic_user")
    problem(_flow(bob, "g", [("login-flow", "ref")]), 403, "forbidden")
    problem(bob.post(bob.e("/cloud-flows/f/run")), 403, "forbidden")
