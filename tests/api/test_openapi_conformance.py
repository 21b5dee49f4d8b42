"""Every operation answers as /openapi.json says: its status codes, content types, bodies and headers.

schemathesis reads the schema from the app and sends each operation a few generated requests (valid and
invalid ones), as the bootstrap administrator (a machine, for the agent's /machines/me operations). A path
parameter is now and then replaced by an object that exists, so answers other than 404 are checked too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from credflow.api.app import create_app
from credflow.services.access.users import bootstrap
from credflow.services.core import build_core
from credflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, Api, new_machine

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A credflow on SQLite (no background workers) with something in it: a builtin store "vault" with a secret,
    a text and a secret variable, a credential shared with a team, a machine in a group, a desktop flow, a
    connection, a connection reference, a cloud flow, a queued run, a solution and an event key; and for the
    agent's operations a machine of their own with a run waiting for it, and for the webhook a key of its own."""
    config = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'credflow.db'}",
                      bootstrap_token=ADMIN_TOKEN, run_workers=False)
    core = build_core(config)
    bootstrap(core, ADMIN_TOKEN)
    app = create_app(config, core)
    with TestClient(app) as client:
        admin = Api(client, ADMIN_TOKEN)
        admin.env = admin.ok(admin.get("/environments"))["items"][0]["id"]
        admin.store("vault")
        admin.secret("vault", "robot-password", "S3cr3t-Pa55word!")
        admin.text_var("robot_user", "robot@corp.example")
        admin.secret_var("robot_pass", "vault", "robot-password")
        cred = admin.credential("Robot login", "robot_user", "robot_pass")
        maker = admin.user("maria")
        team = admin.ok(admin.post(admin.e("/teams"), {"name": "ops", "members": [maker.info["id"]]}), 201)
        admin.ok(admin.put(admin.e(f"/credentials/{cred['id']}/shares/{team['id']}"), {"role": "user"}))
        _, machine_id, _ = new_machine(admin, "pc-1")
        group = admin.ok(admin.post(admin.e("/machine-groups"), {"name": "pool", "machines": [machine_id]}), 201)
        flow = admin.ok(admin.post(admin.e("/desktop-flows"), {"name": "login", "command": ["echo", "hi"]}), 201)
        conn = admin.ok(admin.post(admin.e("/connections"), {"name": "robot", "target": {"machine": machine_id},
                                                             "credential": cred["id"]}), 201)
        ref = admin.ok(admin.post(admin.e("/connection-references"), {"name": "robot-ref",
                                                                      "connection": conn["id"]}), 201)
        cloud = admin.ok(admin.post(admin.e("/cloud-flows"), {
            "name": "nightly", "trigger": {"type": "schedule", "cron": "0 3 * * *"},
            "actions": [{"type": "run_desktop_flow", "desktop_flow": flow["id"], "connection_reference": ref["id"]}]}),
            201)
        run = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow["id"], "connection": conn["id"]}), 201)
        admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "Robots", "display_name": "Robots",
                                                    "version": "1.0.0.0"}), 201)
        admin.ok(admin.post(admin.e("/solutions/Robots/components"), {"type": "cloud_flow", "id": cloud["id"]}))
        event_key = admin.ok(admin.post(admin.e("/event-keys")), 201)
        # The agent's own: no operation but its own is pointed at them, so a delete elsewhere leaves them be.
        agent, agent_id, _ = new_machine(admin, "agent-1")
        agent_cred = admin.credential("Agent login", "robot_user", "robot_pass")
        agent_flow = admin.ok(admin.post(admin.e("/desktop-flows"), {"name": "agent-job", "command": ["true"]}), 201)
        agent_conn = admin.ok(admin.post(admin.e("/connections"), {
            "name": "agent", "target": {"machine": agent_id}, "credential": agent_cred["id"]}), 201)
        agent_run = admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": agent_flow["id"],
                                                           "connection": agent_conn["id"]}), 201)
        webhook_key = admin.ok(admin.post(admin.e("/event-keys")), 201)
    # What a path parameter may be replaced by: by the collection it names an object of, else by its name.
    known = {"env": admin.env, "user_id": maker.info["id"], "store": "vault", "secrets": "robot-password",
             "solutions": "Robots", "var": "robot_pass", "cred": cred["id"], "principal": team["id"],
             "team": team["id"], "user": maker.info["id"], "machine": machine_id, "group": group["id"],
             "desktop-flows": flow["id"], "cloud-flows": cloud["id"], "connection": conn["id"], "run_id": run["id"],
             "ref": ref["id"], "key_id": event_key["id"]}
    yield {"app": app, "known": known, "agent_known": {"run_id": agent_run["id"]}, "agent_token": agent.token,
           "event_key": webhook_key["key"]}
    core.db.engine.dispose()


@pytest.fixture
def api_schema(world: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", world["app"])


schema = schemathesis.pytest.from_fixture("api_schema")


def _existing(known: dict[str, str], path: str, param: str) -> str | None:
    """An existing object for the path parameter ``param`` of ``path``: ``{flow}`` and ``{name}`` name objects of
    the collection before them (desktop or cloud flows, solutions or secrets)."""
    segments = path.split("/")
    placeholder = "{" + param + "}"
    if placeholder in segments and param in ("flow", "name"):
        return known.get(segments[segments.index(placeholder) - 1])
    return known.get(param)


@schema.parametrize()
@schema.given(data=st.data())
@settings(max_examples=10, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, data: st.DataObject, world: dict[str, Any]) -> None:
    agent = case.path.startswith("/api/v1/machines/me/")
    for param in list(case.path_parameters or {}):
        existing = _existing(world["agent_known" if agent else "known"], case.path, param)
        # The environment is always the real one (else nearly everything is a 404); other objects sometimes.
        if existing is not None and (param == "env" or data.draw(st.booleans(), label=f"an existing {param}")):
            case.path_parameters[param] = existing
    token = ADMIN_TOKEN
    if agent:
        token = world["agent_token"]
        if case.path.endswith("/jobs/claim"):
            case.query = {**(case.query or {}), "wait": 0}  # a long poll would wait up to two minutes
    if case.path == "/events/eventgrid" and data.draw(st.booleans(), label="a valid event key"):
        case.query = {**(case.query or {}), "key": world["event_key"]}
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
