"""Bad input gets a clear problem+json error with a stable code, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


def _state(admin: Api) -> Any:
    return [admin.ok(admin.get(admin.e(p)))["items"] for p in ("/credentials", "/environment-variables",
                                                               "/secret-stores")]


CASES = [
    # (method, path, body, status, code)
    ("post", "/credentials", {"name": "x", "username_variable": "nope", "password_variable": "robot_pass"},
     404, "variable_not_found"),
    ("post", "/credentials", {"name": "x", "username_variable": "robot_pass", "password_variable": "robot_pass"},
     422, "wrong_variable_type"),
    ("post", "/credentials", {"name": "Robot login", "username_variable": "robot_user",
                              "password_variable": "robot_pass"}, 409, "duplicate_name"),
    ("post", "/credentials", {"name": "  ", "username_variable": "robot_user", "password_variable": "robot_pass"},
     422, "empty_name"),
    ("post", "/credentials", {"name": "x", "username_variable": "robot_user", "password_variable": "robot_pass",
                              "colour": "red"}, 422, "unknown_field"),
    ("post", "/credentials", {"name": "x"}, 422, "invalid_request"),
    ("post", "/environment-variables", {"schema_name": "robot_user", "type": "text", "value": "x"},
     409, "duplicate_name"),
    ("post", "/environment-variables", {"schema_name": "9bad name", "type": "text", "value": "x"},
     422, "malformed_schema_name"),
    ("post", "/environment-variables", {"schema_name": "v", "type": "number", "value": "x"},
     422, "unknown_variable_type"),
    ("post", "/environment-variables", {"schema_name": "v", "type": "secret", "secret_reference": {"name": "a"}},
     422, "malformed_secret_reference"),
    ("post", "/environment-variables", {"schema_name": "v", "type": "secret", "secret_reference": "/not/azure"},
     422, "malformed_secret_reference"),
    ("post", "/environment-variables", {"schema_name": "v", "type": "secret",
                                        "secret_reference": {"store": "nostore", "name": "a"}},
     404, "store_not_found"),
    ("post", "/environment-variables", {"schema_name": "v", "type": "secret",
                                        "secret_reference": {"store": "vault", "name": "missing"}},
     422, "secret_unreadable"),
    ("post", "/environment-variables", {"schema_name": "v", "type": "secret",
                                        "secret_reference": {"store": "vault", "name": "robot-password",
                                                             "version": "99"}},
     422, "secret_unreadable"),
    ("post", "/environment-variables", {"schema_name": "v", "type": "secret", "value": "plain"},
     422, "wrong_fields"),
    ("post", "/secret-stores", {"name": "s2", "kind": "tape-drive"}, 422, "unknown_store_kind"),
    ("post", "/secret-stores", {"name": "vault", "kind": "builtin"}, 409, "duplicate_name"),
    ("post", "/secret-stores", {"name": "s4", "kind": "hashicorp-vault", "vault_url": "http://[::1",
                                "config": {"address": "http://127.0.0.1:8200", "token": "t"}},
     422, "malformed_vault_url"),
    ("post", "/secret-stores", {"name": "s5", "kind": "builtin", "vault_url": "builtin://x\x00"}, 422,
     "malformed_vault_url"),
    ("post", "/secret-stores", {"name": "s\x006", "kind": "builtin"}, 422, "malformed_name"),
    ("post", "/secret-stores", {"name": "s3", "kind": "builtin", "config": {"token": "x"}},
     422, "invalid_store_config"),
    ("put", "/secret-stores/vault/secrets/big", {"value": "x" * 25_001}, 422, "secret_too_large"),
    ("put", "/secret-stores/vault/secrets/bad%23name", {"value": "x"}, 422, "malformed_secret_name"),
    ("put", "/secret-stores/nostore/secrets/a", {"value": "x"}, 404, "store_not_found"),
    ("patch", "/credentials/Robot login", {"owner": "someone"}, 422, "unknown_field"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), CASES,
                         ids=[f"{c[3]}-{c[4]}" for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(admin: Api, cred_setup: dict[str, Any], method: str, path: str,
                                                  body: Any, status: int, code: str) -> None:
    before = _state(admin)
    resp = getattr(admin, method)(admin.e(path), body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["code"] == code and problem["status"] == status and problem["title"] and problem["detail"]
    assert _state(admin) == before


def test_malformed_json_is_400(admin: Api) -> None:
    resp = admin.http.post(f"/api/v1/environments/{admin.env}/credentials", content=b"{not json",
                           headers={"Authorization": f"Bearer {admin.token}", "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_json"


def test_no_token_is_401_and_a_bad_token_is_401(admin: Api) -> None:
    assert admin.http.get("/api/v1/me").status_code == 401
    resp = admin.http.get("/api/v1/me", headers={"Authorization": "Bearer cfu_wrong"})
    assert resp.status_code == 401 and resp.json()["code"] == "unauthenticated"


def test_an_environment_not_mine_is_404(admin: Api) -> None:
    resp = admin.get("/environments/does-not-exist/credentials")
    assert resp.status_code == 404 and resp.json()["code"] == "environment_not_found"


@pytest.mark.parametrize(("path", "body", "code", "allowed"), [
    ("/secret-stores", {"name": "s", "kind": "tape-drive"}, "unknown_store_kind", None),  # the kinds installed
    ("/environment-variables", {"schema_name": "v", "type": "number", "value": "x"}, "unknown_variable_type",
     ["text", "secret"]),
    ("/solutions/Robots/components", {"type": "flow", "id": "x"}, "unknown_component_type",
     ["environment_variable", "credential", "desktop_flow", "connection_reference", "cloud_flow"]),
])
def test_an_error_that_rejects_a_value_lists_the_valid_ones(admin: Api, path: str, body: dict[str, Any], code: str,
                                                            allowed: list[str] | None) -> None:
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "Robots", "display_name": "Robots",
                                                "version": "1.0.0.0"}), 201)
    if allowed is None:
        allowed = [k["kind"] for k in admin.ok(admin.get("/secret-store-kinds"))["items"] if k["viable"]]
        assert "builtin" in allowed
    got = admin.post(admin.e(path), body)
    assert got.status_code == 422 and got.json()["code"] == code, got.text
    assert sorted(got.json()["allowed"]) == sorted(allowed)
    assert all(value in got.json()["detail"] for value in allowed if code != "unknown_variable_type")
    assert "tape-drive" not in got.json()["detail"]  # no error echoes the value it refuses
