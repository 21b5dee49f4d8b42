"""Solutions: create, add components (with what they need), and export as a zip that holds no secret value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, problem
from tests.solutions.conftest import PASSWORD, export, unzip


def _manifest(data: bytes) -> dict[str, Any]:
    return json.loads(unzip(data)["manifest.json"])  # type: ignore[no-any-return]


def _doc(data: bytes, manifest: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    [entry] = [c for c in manifest["components"] if (c["type"], c["name"]) == (type_, name)]
    return json.loads(unzip(data)[entry["file"]])  # type: ignore[no-any-return]


def test_a_solution_is_created_whole_and_its_name_is_unique(admin: Api) -> None:
    body = {"unique_name": "Contoso_Robots", "display_name": "Robots", "version": "1.2.0.0", "publisher": "Contoso"}
    made = admin.ok(admin.post(admin.e("/solutions"), body), 201)
    assert {k: made[k] for k in body} == body and made["components"] == [] and made["id"]
    assert admin.ok(admin.get(admin.e("/solutions/Contoso_Robots")))["id"] == made["id"]
    assert [s["unique_name"] for s in admin.ok(admin.get(admin.e("/solutions")))["items"]] == ["Contoso_Robots"]
    problem(admin.post(admin.e("/solutions"), body), 409, "duplicate_name")


@pytest.mark.parametrize("field,value", [("unique_name", "has space"), ("unique_name", "1abc"),
                                         ("version", "one"), ("version", "1.2.3.4.5"), ("display_name", "")])
def test_a_solution_needs_a_proper_name_and_version(admin: Api, field: str, value: str) -> None:
    body = {"unique_name": "Good", "display_name": "Good", "version": "1.0", field: value}
    problem(admin.post(admin.e("/solutions"), body), 422, "invalid_solution")
    assert admin.ok(admin.get(admin.e("/solutions")))["items"] == []


def test_adding_a_credential_pulls_in_its_variables(admin: Api, seeded: dict[str, Any]) -> None:
    got = admin.ok(admin.get(admin.e("/solutions/CredentialSolution")))
    assert sorted((c["type"], c["name"]) for c in got["components"]) == [
        ("credential", "Robot login"), ("environment_variable", "robot_pass"), ("environment_variable", "robot_user")]


def test_a_component_another_solution_holds_becomes_a_dependency_on_that_solution(admin: Api,
                                                                                 seeded: dict[str, Any]) -> None:
    got = admin.ok(admin.get(admin.e("/solutions/FlowSolution")))
    assert sorted((c["type"], c["name"]) for c in got["components"]) == [
        ("cloud_flow", "Nightly invoices"), ("connection_reference", "Robot ref"), ("desktop_flow", "Invoice bot")]
    manifest = _manifest(export(admin, "FlowSolution"))
    assert manifest["dependencies"] == [{"type": "credential", "name": "Robot login",
                                         "solution": "CredentialSolution"}]


def test_without_add_required_the_variables_are_dependencies_no_solution_provides(admin: Api,
                                                                                  cred_setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "Bare", "display_name": "Bare", "version": "1.0"}),
             201)
    got = admin.ok(admin.post(admin.e("/solutions/Bare/components"),
                              {"type": "credential", "id": "Robot login", "add_required": False}))
    assert [a["name"] for a in got["added"]] == ["Robot login"]
    deps = _manifest(export(admin, "Bare"))["dependencies"]
    assert deps == [{"type": "environment_variable", "name": "robot_pass"},
                    {"type": "environment_variable", "name": "robot_user"}]


def test_unknown_component_types_and_components_are_refused(admin: Api, cred_setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "S", "display_name": "S", "version": "1.0"}), 201)
    problem(admin.post(admin.e("/solutions/S/components"), {"type": "machine", "id": "x"}), 422,
            "unknown_component_type")
    problem(admin.post(admin.e("/solutions/S/components"), {"type": "credential", "id": "nope"}), 404,
            "component_not_found")
    problem(admin.post(admin.e("/solutions/Nope/components"), {"type": "credential", "id": "Robot login"}), 404,
            "solution_not_found")
    assert admin.ok(admin.get(admin.e("/solutions/S")))["components"] == []


def test_solutions_are_for_makers_and_administrators(admin: Api, cred_setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "S", "display_name": "S", "version": "1.0"}), 201)
    maker = admin.user("mia", "environment_maker")
    problem(maker.post(maker.e("/solutions/S/components"), {"type": "environment_variable", "id": "robot_user"}),
            403, "not_owner")  # the administrator's solution
    maker.ok(maker.post(maker.e("/solutions"), {"unique_name": "M", "display_name": "M", "version": "1.0"}), 201)
    maker.ok(maker.post(maker.e("/solutions/M/components"), {"type": "environment_variable", "id": "robot_user"}))
    assert maker.get(maker.e("/solutions/M/export")).status_code == 200
    assert maker.get(maker.e("/solutions/S/export")).status_code == 200
    basic = admin.user("bob", "basic_user")
    problem(basic.get(basic.e("/solutions")), 403, "forbidden")
    problem(basic.get(basic.e("/solutions/S/export")), 403, "forbidden")
    problem(basic.post(basic.e("/solutions"), {"unique_name": "B", "display_name": "B", "version": "1.0"}),
            403, "forbidden")
    problem(basic.post(basic.e("/solutions/S/components"), {"type": "credential", "id": "Robot login"}),
            403, "forbidden")


def test_the_export_carries_references_and_bindings_never_a_secret_value(admin: Api, seeded: dict[str, Any]
                                                                         ) -> None:
    data = export(admin, "CredentialSolution")
    manifest = _manifest(data)
    assert manifest["schema_version"] == 1
    assert manifest["solution"] == {"unique_name": "CredentialSolution", "display_name": "Credentials",
                                    "version": "1.0.0.0", "publisher": "Contoso"}
    assert _doc(data, manifest, "environment_variable", "robot_pass") == {
        "schema_name": "robot_pass", "display_name": "robot_pass", "type": "secret",
        "secret_reference": {"store": "vault", "name": "robot-password"}}
    assert _doc(data, manifest, "credential", "Robot login") == {
        "name": "Robot login", "description": "for the robot", "username_variable": "robot_user",
        "password_variable": "robot_pass"}
    flows = export(admin, "FlowSolution")
    fm = _manifest(flows)
    assert _doc(flows, fm, "cloud_flow", "Nightly invoices")["actions"] == [
        {"type": "run_desktop_flow", "desktop_flow": "Invoice bot", "connection_reference": "Robot ref"}]
    assert _doc(flows, fm, "connection_reference", "Robot ref") == {"name": "Robot ref", "credential": "Robot login"}
    for blob in (data, flows):
        assert PASSWORD.encode() not in blob
        assert all(PASSWORD.encode() not in content for content in unzip(blob).values())


def test_a_pinned_version_travels_with_the_reference(admin: Api) -> None:
    admin.store("vault")
    admin.secret("vault", "s", "first-Value-91")
    admin.secret("vault", "s", "second-Value-92")
    admin.secret_var("pinned", "vault", "s", version="1")
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "P", "display_name": "P", "version": "1.0"}), 201)
    admin.ok(admin.post(admin.e("/solutions/P/components"), {"type": "environment_variable", "id": "pinned"}))
    data = export(admin, "P")
    ref = _doc(data, _manifest(data), "environment_variable", "pinned")["secret_reference"]
    assert ref == {"store": "vault", "name": "s", "version": "1"}
    everything = data + b"".join(unzip(data).values())
    assert b"first-Value-91" not in everything and b"second-Value-92" not in everything


def test_a_new_version_is_set_with_patch(admin: Api) -> None:
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "S", "display_name": "S", "version": "1.0"}), 201)
    assert admin.ok(admin.patch(admin.e("/solutions/S"), {"version": "1.1"}))["version"] == "1.1"
    problem(admin.patch(admin.e("/solutions/S"), {"version": "latest"}), 422, "invalid_solution")
    problem(admin.patch(admin.e("/solutions/S"), {"unique_name": "T"}), 422, "unknown_field")
