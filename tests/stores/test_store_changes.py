"""Changing and deleting a secret store: a partial config keeps the secret fields it leaves out (so a vault token
is rotated alone), every check of a new store runs again, a store that would connect elsewhere gives up its
stored secrets, and a store that environment variables reference is not deleted."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from credflow.services.core import Core
from tests.conftest import Api, problem
from tests.stores.conftest import OpenBao


def _bao_store(admin: Api, bao: OpenBao, token: str, name: str = "bao") -> dict[str, Any]:
    return admin.store(name, kind="hashicorp-vault", vault_url=bao.address,
                       config={"address": bao.address, "token": token, "poll_interval_seconds": 5})


def _checks(admin: Api, store: str) -> dict[str, bool]:
    report = admin.ok(admin.post(admin.e(f"/secret-stores/{store}/check")))
    return {c["check"]: c["ok"] for c in report["checks"]}


def _patch(admin: Api, store: str, body: dict[str, Any]) -> Any:
    return admin.patch(admin.e(f"/secret-stores/{store}"), body)


def test_a_vault_token_is_rotated_alone_and_kept_by_later_changes(admin: Api, openbao: OpenBao) -> None:
    _bao_store(admin, openbao, "expired-token")
    assert not _checks(admin, "bao")["service_can_read"]
    rotated = admin.ok(_patch(admin, "bao", {"config": {"token": openbao.root_token}}))
    assert openbao.root_token not in str(rotated) and "token" not in rotated["config"]
    assert _checks(admin, "bao")["service_can_read"]
    tuned = admin.ok(_patch(admin, "bao", {"config": {"poll_interval_seconds": 30, "mount": "secret"}}))
    assert tuned["config"]["poll_interval_seconds"] == 30 and tuned["config"]["address"] == openbao.address
    assert _checks(admin, "bao")["service_can_read"]  # the token was kept


def test_a_secret_variable_reads_through_the_changed_store(admin: Api, openbao: OpenBao) -> None:
    path = f"robots/{uuid.uuid4().hex[:8]}"
    openbao.root().secrets.kv.v2.create_or_update_secret(path=path, secret={"value": "pw-1"})
    _bao_store(admin, openbao, "expired-token")
    problem(admin.post(admin.e("/environment-variables"), {"schema_name": "pw", "type": "secret",
                                                           "secret_reference": {"store": "bao", "name": path}}),
            422, "secret_unreadable")
    admin.ok(_patch(admin, "bao", {"config": {"token": openbao.root_token}}))
    assert admin.secret_var("pw", "bao", path)["secret_reference"]["name"] == path


def test_a_store_that_would_connect_elsewhere_needs_its_secret_fields_again(admin: Api, openbao: OpenBao) -> None:
    _bao_store(admin, openbao, openbao.root_token)
    elsewhere = {"address": "https://vault.attacker.example:8200"}
    body = problem(_patch(admin, "bao", {"config": elsewhere}), 422, "secret_fields_required")
    assert body["fields"] == ["token"] and openbao.root_token not in str(body)
    problem(_patch(admin, "bao", {"vault_url": "https://vault.attacker.example"}), 422, "secret_fields_required")
    assert admin.ok(admin.get(admin.e("/secret-stores/bao")))["config"]["address"] == openbao.address
    moved = admin.ok(_patch(admin, "bao", {"config": {**elsewhere, "token": "its-own-token"}}))
    assert moved["config"]["address"] == elsewhere["address"]


def test_a_vault_store_switches_from_a_token_to_an_approle(admin: Api, openbao: OpenBao) -> None:
    _bao_store(admin, openbao, openbao.root_token)
    approle = {"role_id": "robot", "secret_id": "s3cret-id"}
    problem(_patch(admin, "bao", {"config": {"approle": approle}}), 422, "invalid_store_config")  # and a token?
    switched = admin.ok(_patch(admin, "bao", {"config": {"token": None, "approle": approle}}))
    assert switched["config"]["approle"] == {"role_id": "robot"} and "s3cret-id" not in str(switched)
    renamed_role = admin.ok(_patch(admin, "bao", {"config": {"approle": {"role_id": "robot-2"}}}))
    assert renamed_role["config"]["approle"] == {"role_id": "robot-2"}  # the secret_id stays


@pytest.mark.parametrize(("body", "field"), [
    ({"vault_url": "http://169.254.169.254"}, "vault_url"),
    ({"config": {"address": "http://[fe80::1]:8200", "token": "t"}}, "address"),
    ({"config": {"address": "http://2852039166/", "token": "t"}}, "address"),
])
def test_a_changed_store_never_points_at_a_link_local_address(admin: Api, openbao: OpenBao, body: dict[str, Any],
                                                             field: str) -> None:
    before = _bao_store(admin, openbao, openbao.root_token)
    assert problem(_patch(admin, "bao", body), 422, "link_local_address")["field"] == field
    assert admin.ok(admin.get(admin.e("/secret-stores/bao"))) == before


def test_a_changed_store_lends_the_servers_identity_only_when_the_operator_allows(admin: Api) -> None:
    keys = {"region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "example-secret"}
    admin.store("aws", kind="aws-secretsmanager", vault_url="https://secretsmanager.eu-west-1.amazonaws.com",
                config=keys)
    body = problem(_patch(admin, "aws", {"config": {"access_key_id": None, "secret_access_key": None}}), 422,
                   "ambient_credentials_off")
    assert "example-secret" not in str(body)
    assert admin.ok(admin.get(admin.e("/secret-stores/aws")))["config"]["access_key_id"] == "AKIAEXAMPLE"


def test_the_servers_identity_is_lent_on_a_change_when_allowed(admin: Api, core: Core,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {"region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "example-secret"}
    admin.store("aws", kind="aws-secretsmanager", vault_url="https://secretsmanager.eu-west-1.amazonaws.com",
                config=keys)
    monkeypatch.setattr(core.settings, "allow_ambient_credentials", True)
    ambient = admin.ok(_patch(admin, "aws", {"config": {"access_key_id": None, "secret_access_key": None}}))
    assert ambient["config"]["access_key_id"] is None


def test_a_store_is_renamed_but_keeps_its_kind(admin: Api) -> None:
    admin.store("vault")
    admin.store("other")
    renamed = admin.ok(_patch(admin, "vault", {"name": "main-vault"}))
    assert renamed["name"] == "main-vault" and renamed["vault_url"] == "builtin://default/vault"
    assert admin.ok(admin.get(admin.e("/secret-stores/main-vault")))["id"] == renamed["id"]
    problem(_patch(admin, "main-vault", {"name": "other"}), 409, "duplicate_name")
    problem(_patch(admin, "main-vault", {"kind": "hashicorp-vault"}), 422, "store_kind_immutable")
    assert admin.ok(_patch(admin, "main-vault", {"kind": "builtin"}))["kind"] == "builtin"
    problem(_patch(admin, "main-vault", {"config": {"token": "x"}}), 422, "invalid_store_config")
    problem(_patch(admin, "main-vault", {"vault_url": "http://[::1"}), 422, "malformed_vault_url")
    problem(_patch(admin, "nope", {"name": "x"}), 404, "store_not_found")


def test_a_store_that_variables_reference_is_not_deleted(admin: Api, cred_setup: dict[str, Any]) -> None:
    body = problem(admin.delete(admin.e("/secret-stores/vault")), 409, "in_use")
    assert body["dependents"]["environment_variables"] == [{"id": cred_setup["pass_var"]["id"],
                                                            "schema_name": "robot_pass"}]
    assert body["dependents"]["counts"] == {"environment_variables": 1}
    assert admin.ok(admin.get(admin.e("/secret-stores/vault")))["name"] == "vault"
    assert admin.delete(admin.e(f"/credentials/{cred_setup['credential']['id']}")).status_code == 204
    assert admin.delete(admin.e("/environment-variables/robot_pass")).status_code == 204
    assert admin.delete(admin.e("/secret-stores/vault")).status_code == 204
    problem(admin.get(admin.e("/secret-stores/vault")), 404, "store_not_found")
    admin.store("vault")  # its name is free again, and its secrets went with it
    assert admin.ok(admin.get(admin.e("/secret-stores/vault/secrets")))["items"] == []


def test_changes_and_deletions_are_audited_without_secrets(admin: Api, openbao: OpenBao) -> None:
    made = _bao_store(admin, openbao, openbao.root_token)
    admin.ok(_patch(admin, "bao", {"name": "bao-2", "config": {"token": "rotated-token-value"}}))
    assert admin.delete(admin.e("/secret-stores/bao-2")).status_code == 204
    records = admin.ok(admin.get(admin.e("/audit"), params={"object": made["id"]}))["items"]
    assert [r["action"] for r in records] == ["secret_store.create", "secret_store.update", "secret_store.delete"]
    assert records[1]["detail"] == {"name": "bao-2", "previous_name": "bao", "vault_url_changed": False,
                                    "config_changed": ["token"]}
    assert "rotated-token-value" not in str(records) and openbao.root_token not in str(records)


def test_only_administrators_change_or_delete_stores(admin: Api) -> None:
    admin.store("vault")
    mia, bob = admin.user("mia", "environment_maker"), admin.user("bob", "basic_user")
    problem(mia.patch(mia.e("/secret-stores/vault"), {"name": "mine"}), 403, "not_owner")
    problem(mia.delete(mia.e("/secret-stores/vault")), 403, "not_owner")
    problem(bob.patch(bob.e("/secret-stores/vault"), {"name": "mine"}), 403, "forbidden")
    assert admin.ok(admin.get(admin.e("/secret-stores/vault")))["name"] == "vault"
