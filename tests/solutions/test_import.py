"""Importing solutions into another environment: dependencies first, all or nothing, dry runs, deployment
settings, newer versions, and the same checks as creating a secret variable by hand."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, problem
from tests.solutions.conftest import (
    PASSWORD,
    TARGET_PASSWORD,
    connection,
    export,
    import_,
    inventory,
    target_env,
    unzip,
)

EMPTY = {"variables": [], "credentials": [], "desktop_flows": [], "connection_references": [], "cloud_flows": [],
         "solutions": []}


def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    body = problem(resp, status, code)
    assert body["detail"]
    return body


def _names(report: dict[str, Any], key: str) -> list[tuple[str, str]]:
    return sorted((i["type"], i["name"]) for i in report[key])


def test_the_seed_order_works_and_the_other_order_fails_leaving_nothing_behind(admin: Api,
                                                                              seeded: dict[str, Any]) -> None:
    creds, flows = export(admin, "CredentialSolution"), export(admin, "FlowSolution")
    prod = target_env(admin)
    body = _problem(import_(prod, flows), 409, "missing_dependencies")
    assert body["missing"] == [{"type": "credential", "name": "Robot login", "solution": "CredentialSolution"}]
    assert "CredentialSolution" in body["detail"]
    assert inventory(prod) == EMPTY

    first = prod.ok(import_(prod, creds))
    assert _names(first, "created") == [("credential", "Robot login"), ("environment_variable", "robot_pass"),
                                        ("environment_variable", "robot_user")]
    second = prod.ok(import_(prod, flows))
    assert _names(second, "created") == [("cloud_flow", "Nightly invoices"), ("connection_reference", "Robot ref"),
                                         ("desktop_flow", "Invoice bot")]
    assert second["solution"] == {"unique_name": "FlowSolution", "display_name": "Flows", "version": "1.0.0.0",
                                  "previous_version": None}
    assert inventory(prod) == {"variables": ["robot_pass", "robot_user"], "credentials": ["Robot login"],
                               "desktop_flows": ["Invoice bot"], "connection_references": ["Robot ref"],
                               "cloud_flows": ["Nightly invoices"],
                               "solutions": ["CredentialSolution", "FlowSolution"]}


def test_imported_components_are_bound_in_the_target_environment(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    prod.ok(import_(prod, export(admin, "CredentialSolution")))
    prod.ok(import_(prod, export(admin, "FlowSolution")))
    store = prod.ok(prod.get(prod.e("/secret-stores/vault")))
    var = prod.ok(prod.get(prod.e("/environment-variables/robot_pass")))
    assert var["secret_reference"]["store"] == store["id"] and var["secret_reference"]["name"] == "robot-password"
    cred = prod.ok(prod.get(prod.e("/credentials/Robot login")))
    assert cred["password_variable"] == var["id"] and cred["my_role"] == "owner"
    flow = prod.ok(prod.get(prod.e("/cloud-flows/Nightly invoices")))
    desktop = prod.ok(prod.get(prod.e("/desktop-flows/Invoice bot")))
    ref = prod.ok(prod.get(prod.e("/connection-references/Robot ref")))
    assert flow["actions"] == [{"type": "run_desktop_flow", "desktop_flow": desktop["id"],
                                "connection_reference": ref["id"]}]
    assert flow["next_fire_at"] is not None and ref["connection"] is None
    assert desktop["command"] == ["python", "-c", "print(1)"]


def test_a_dry_run_reports_and_changes_nothing(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    report = prod.ok(import_(prod, export(admin, "CredentialSolution"), dry_run=True))
    assert report["dry_run"] is True and len(report["created"]) == 3
    assert all("id" not in item for item in report["created"])
    assert inventory(prod) == EMPTY
    _problem(import_(prod, export(admin, "FlowSolution"), dry_run=True), 409, "missing_dependencies")


def test_deployment_settings_map_values_secrets_and_connections(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    prod.store("prod-vault")
    prod.secret("prod-vault", "prod-robot", TARGET_PASSWORD)
    settings = {"environment_variables": {"robot_user": {"value": "prod-robot@corp.example"},
                                          "robot_pass": {"secret_reference": {"store": "prod-vault",
                                                                              "name": "prod-robot"}}}}
    prod.ok(import_(prod, export(admin, "CredentialSolution"), json.dumps(settings).encode()))
    assert prod.ok(prod.get(prod.e("/environment-variables/robot_user")))["value"] == "prod-robot@corp.example"
    ref = prod.ok(prod.get(prod.e("/environment-variables/robot_pass")))["secret_reference"]
    assert (ref["store_name"], ref["name"]) == ("prod-vault", "prod-robot")

    cred = prod.ok(prod.get(prod.e("/credentials/Robot login")))
    conn = connection(prod, cred["id"], "Prod conn")
    flow_settings = {"connection_references": {"Robot ref": conn["id"]}}
    prod.ok(import_(prod, export(admin, "FlowSolution"), json.dumps(flow_settings).encode()))
    assert prod.ok(prod.get(prod.e("/connection-references/Robot ref")))["connection"] == conn["id"]
    deps = prod.ok(prod.get(prod.e("/environment-variables/robot_pass/dependencies")))
    assert [f["name"] for f in deps["cloud_flows"]] == ["Nightly invoices"]


def test_settings_must_fit_the_solution(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    data = export(admin, "CredentialSolution")
    for settings in ({"environment_variables": {"not_here": {"value": "x"}}},
                     {"environment_variables": {"robot_pass": {"value": "a value for a secret variable"}}},
                     {"environment_variables": {"robot_user": {"secret_reference": {"store": "vault", "name": "x"}}}},
                     {"surprise": True}):
        body = _problem(import_(prod, data, json.dumps(settings).encode()), 422, "invalid_settings")
        assert "a value for a secret variable" not in json.dumps(body)
    _problem(import_(prod, data, b"{not json"), 400, "malformed_settings")
    assert inventory(prod) == EMPTY


def test_a_newer_version_updates_in_place_and_an_older_one_is_refused(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    prod.ok(import_(prod, export(admin, "CredentialSolution")))
    before = prod.ok(prod.get(prod.e("/credentials/Robot login")))
    _problem(import_(prod, export(admin, "CredentialSolution")), 409, "version_not_newer")

    admin.ok(admin.patch(admin.e("/credentials/Robot login"), {"description": "now documented"}))
    admin.text_var("robot_domain", "CORP")
    admin.ok(admin.post(admin.e("/solutions/CredentialSolution/components"),
                        {"type": "environment_variable", "id": "robot_domain"}))
    admin.ok(admin.patch(admin.e("/solutions/CredentialSolution"), {"version": "1.1.0.0"}))
    report = prod.ok(import_(prod, export(admin, "CredentialSolution")))
    assert report["solution"]["previous_version"] == "1.0.0.0" and report["solution"]["version"] == "1.1.0.0"
    assert _names(report, "created") == [("environment_variable", "robot_domain")]
    assert _names(report, "updated") == [("credential", "Robot login")]
    after = prod.ok(prod.get(prod.e("/credentials/Robot login")))
    assert after["id"] == before["id"] and after["description"] == "now documented"
    sol = prod.ok(prod.get(prod.e("/solutions/CredentialSolution")))
    assert sol["version"] == "1.1.0.0" and len(sol["components"]) == 4
    assert [s["unique_name"] for s in prod.ok(prod.get(prod.e("/solutions")))["items"]] == ["CredentialSolution"]


def test_an_update_keeps_the_target_environments_own_values(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    prod.ok(import_(prod, export(admin, "CredentialSolution")))
    prod.ok(prod.patch(prod.e("/environment-variables/robot_user"), {"value": "prod-only@corp.example"}))
    admin.ok(admin.patch(admin.e("/solutions/CredentialSolution"), {"version": "2.0"}))
    prod.ok(import_(prod, export(admin, "CredentialSolution")))
    assert prod.ok(prod.get(prod.e("/environment-variables/robot_user")))["value"] == "prod-only@corp.example"


def test_a_secret_variable_imports_only_where_its_store_and_secret_exist(admin: Api, seeded: dict[str, Any]) -> None:
    data = export(admin, "CredentialSolution")
    bare = Api(admin.http, admin.token, admin.ok(admin.post("/environments", {"name": "bare"}), 201)["id"])
    body = _problem(import_(bare, data), 404, "store_not_found")
    assert body["component"] == {"type": "environment_variable", "name": "robot_pass"}
    assert inventory(bare) == EMPTY
    bare.store("vault")  # the store, but not the secret
    body = _problem(import_(bare, data), 422, "secret_unreadable")
    assert body["component"]["name"] == "robot_pass"
    assert inventory(bare) == EMPTY


def test_a_maker_imports_secret_variables_only_from_stores_they_may_use(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    maker = admin.user("mia", "environment_maker", env=prod.env)
    data = export(admin, "CredentialSolution")
    _problem(import_(maker, data), 403, "store_access_denied")
    assert inventory(prod) == EMPTY
    prod.ok(prod.post(prod.e("/secret-stores/vault/access"), {"principal": maker.info["id"], "allowed": True}))
    report = maker.ok(import_(maker, data))
    assert len(report["created"]) == 3
    assert maker.ok(maker.get(maker.e("/credentials/Robot login")))["my_role"] == "owner"


def test_basic_users_cannot_import(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    basic = admin.user("bob", "basic_user", env=prod.env)
    _problem(import_(basic, export(admin, "CredentialSolution")), 403, "forbidden")
    assert inventory(prod) == EMPTY


def test_a_variable_of_the_other_type_stops_the_import(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    prod.secret_var("robot_user", "vault", "robot-password")
    body = _problem(import_(prod, export(admin, "CredentialSolution")), 422, "variable_type_mismatch")
    assert body["component"] == {"type": "environment_variable", "name": "robot_user"}
    assert inventory(prod)["credentials"] == [] and inventory(prod)["solutions"] == []


def test_a_round_trip_exports_what_was_imported(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    originals = {name: export(admin, name) for name in ("CredentialSolution", "FlowSolution")}
    prod.ok(import_(prod, originals["CredentialSolution"]))
    # A connection reference depends on the credential of the connection it is bound to.
    conn = connection(prod, prod.ok(prod.get(prod.e("/credentials/Robot login")))["id"], "Prod conn")
    settings = json.dumps({"connection_references": {"Robot ref": conn["id"]}}).encode()
    prod.ok(import_(prod, originals["FlowSolution"], settings))
    for name, original in originals.items():
        again = export(prod, name)
        for blob in (original, again):
            assert PASSWORD.encode() not in blob and TARGET_PASSWORD.encode() not in blob
        assert _contents(again) == _contents(original)


def _contents(data: bytes) -> dict[str, Any]:
    files = {k: json.loads(v) for k, v in unzip(data).items()}
    files["manifest.json"].pop("exported_at")
    return files


def test_settings_may_come_as_a_text_field(admin: Api, seeded: dict[str, Any]) -> None:
    prod = target_env(admin)
    settings = json.dumps({"environment_variables": {"robot_user": {"value": "field@corp.example"}}})
    resp = prod.post(prod.e("/solutions/import"), files={"file": ("s.zip", export(admin, "CredentialSolution"))},
                     data={"settings": settings})
    prod.ok(resp)
    assert prod.ok(prod.get(prod.e("/environment-variables/robot_user")))["value"] == "field@corp.example"
