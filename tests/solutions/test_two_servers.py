"""Moving the seed's two solutions between two credflow servers, each with its own database and master key."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api
from tests.solutions.conftest import (
    PASSWORD,
    TARGET_PASSWORD,
    connection,
    export,
    import_,
    inventory,
    unzip,
)


def _prepare(server: Api) -> None:
    server.store("vault")
    server.secret("vault", "robot-password", TARGET_PASSWORD)


def _scan(*blobs: bytes) -> None:
    for blob in blobs:
        for secret in (PASSWORD, TARGET_PASSWORD):
            assert secret.encode() not in blob
            assert all(secret.encode() not in content for content in unzip(blob).values())


def test_the_seed_order_moves_both_solutions_to_another_server(admin: Api, seeded: dict[str, Any],
                                                                second_server: Api) -> None:
    _prepare(second_server)
    creds, flows = export(admin, "CredentialSolution"), export(admin, "FlowSolution")
    _scan(creds, flows)
    second_server.ok(import_(second_server, creds))
    second_server.ok(import_(second_server, flows))
    got = inventory(second_server)
    assert got["credentials"] == ["Robot login"] and got["cloud_flows"] == ["Nightly invoices"]
    assert got["solutions"] == ["CredentialSolution", "FlowSolution"]
    var = second_server.ok(second_server.get(second_server.e("/environment-variables/robot_pass")))
    store = second_server.ok(second_server.get(second_server.e("/secret-stores/vault")))
    assert var["secret_reference"]["store"] == store["id"]


def test_the_other_order_fails_clearly_and_leaves_the_other_server_untouched(admin: Api, seeded: dict[str, Any],
                                                                             second_server: Api) -> None:
    _prepare(second_server)
    before = inventory(second_server)
    resp = import_(second_server, export(admin, "FlowSolution"))
    assert resp.status_code == 409 and resp.json()["code"] == "missing_dependencies"
    assert resp.json()["missing"] == [{"type": "credential", "name": "Robot login",
                                       "solution": "CredentialSolution"}]
    assert inventory(second_server) == before
    second_server.ok(import_(second_server, export(admin, "CredentialSolution")))
    second_server.ok(import_(second_server, export(admin, "FlowSolution")))


def test_a_round_trip_there_and_back_updates_the_origin_in_place(admin: Api, seeded: dict[str, Any],
                                                                 second_server: Api) -> None:
    _prepare(second_server)
    second_server.ok(import_(second_server, export(admin, "CredentialSolution")))
    cred = second_server.ok(second_server.get(second_server.e("/credentials/Robot login")))
    conn = connection(second_server, cred["id"], "Second conn")
    settings = json.dumps({"connection_references": {"Robot ref": conn["id"]}}).encode()
    second_server.ok(import_(second_server, export(admin, "FlowSolution"), settings))

    # Changed and re-versioned on the second server, then brought back to the first.
    second_server.ok(second_server.patch(second_server.e("/credentials/Robot login"),
                                         {"description": "edited on the second server"}))
    for name in ("CredentialSolution", "FlowSolution"):
        second_server.ok(second_server.patch(second_server.e(f"/solutions/{name}"), {"version": "1.1"}))
    back_creds, back_flows = export(second_server, "CredentialSolution"), export(second_server, "FlowSolution")
    _scan(back_creds, back_flows)
    original = admin.ok(admin.get(admin.e("/credentials/Robot login")))
    report = admin.ok(import_(admin, back_creds))
    assert report["solution"]["previous_version"] == "1.0.0.0" and report["created"] == []
    assert [(i["type"], i["name"]) for i in report["updated"]] == [("credential", "Robot login")]
    assert admin.ok(import_(admin, back_flows))["created"] == []
    now = admin.ok(admin.get(admin.e("/credentials/Robot login")))
    assert now["id"] == original["id"] and now["description"] == "edited on the second server"
    # The first server keeps its own binding of the connection reference and its own secret reference.
    ref = admin.ok(admin.get(admin.e("/connection-references/Robot ref")))
    assert ref["connection"] == seeded["connection"]["id"]
    assert admin.ok(admin.get(admin.e("/environment-variables/robot_pass")))["secret_reference"]["store_name"] == \
        "vault"
