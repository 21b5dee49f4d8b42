"""Registering vault stores over the API: write-only secrets in config, the prerequisite report, and secret
variables on real OpenBao and moto servers."""

from __future__ import annotations

import uuid

from tests.conftest import Api
from tests.stores.conftest import AWS_REGION, Moto, OpenBao, free_port


def _bao_store(admin: Api, bao: OpenBao, token: str, name: str = "bao") -> dict:  # type: ignore[type-arg]
    return admin.store(name, kind="hashicorp-vault", vault_url=bao.address,
                       config={"address": bao.address, "token": token, "poll_interval_seconds": 5})


def test_a_vault_token_is_write_only(admin: Api, openbao: OpenBao) -> None:
    made = _bao_store(admin, openbao, openbao.root_token)
    assert openbao.root_token not in str(made)
    assert made["config"]["address"] == openbao.address and "token" not in made["config"]
    got = admin.ok(admin.get(admin.e("/secret-stores/bao")))
    assert openbao.root_token not in str(got)
    assert got["config"]["poll_interval_seconds"] == 5


def test_a_secret_variable_reads_an_openbao_secret_at_creation(admin: Api, openbao: OpenBao) -> None:
    path = f"robots/{uuid.uuid4().hex[:8]}"
    openbao.root().secrets.kv.v2.create_or_update_secret(path=path, secret={"value": "pw-1", "user": "r"})
    _bao_store(admin, openbao, openbao.root_token)
    var = admin.secret_var("pw", "bao", path)
    assert var["secret_reference"]["name"] == path
    admin.secret_var("field", "bao", f"{path}#user")
    resp = admin.post(admin.e("/environment-variables"), {"schema_name": "nope", "type": "secret",
                                                          "secret_reference": {"store": "bao", "name": "no/such"}})
    assert resp.status_code == 422 and resp.json()["code"] == "secret_unreadable"
    assert resp.json()["reason"] == "secret_not_found"


def test_the_prerequisite_report_names_what_fails(admin: Api, openbao: OpenBao) -> None:
    _bao_store(admin, openbao, openbao.root_token, "good")
    _bao_store(admin, openbao, "not-a-token", "badtoken")
    admin.store("down", kind="hashicorp-vault", vault_url="http://127.0.0.1:1",
                config={"address": f"http://127.0.0.1:{free_port()}", "token": "x"})
    good = admin.ok(admin.post(admin.e("/secret-stores/good/check")))
    assert good["ok"], good
    bad = {c["check"]: c for c in admin.ok(admin.post(admin.e("/secret-stores/badtoken/check")))["checks"]}
    assert bad["reachable"]["ok"] and not bad["service_can_read"]["ok"]
    down = {c["check"]: c for c in admin.ok(admin.post(admin.e("/secret-stores/down/check")))["checks"]}
    assert not down["reachable"]["ok"] and down["reachable"]["detail"]


def test_bad_store_config_is_refused_and_changes_nothing(admin: Api) -> None:
    for body, code in (
        ({"name": "a", "kind": "hashicorp-vault", "vault_url": "http://x", "config": {}}, "invalid_store_config"),
        ({"name": "a", "kind": "aws-secretsmanager", "vault_url": "aws://x", "config": {"regio": "x"}},
         "invalid_store_config"),
        ({"name": "a", "kind": "hashicorp-vault", "config": {"address": "http://x", "token": "t"}},
         "missing_vault_url"),
        ({"name": "a", "kind": "cyberark"}, "unknown_store_kind"),
    ):
        resp = admin.post(admin.e("/secret-stores"), body)
        assert resp.status_code == 422 and resp.json()["code"] == code, resp.text
    assert admin.ok(admin.get(admin.e("/secret-stores")))["items"] == []


def test_a_store_of_another_environment_cannot_be_referenced(admin: Api) -> None:
    other = admin.ok(admin.post("/environments", {"name": "other"}), 201)
    Api(admin.http, admin.token, other["id"]).store("elsewhere")
    resp = admin.post(admin.e("/environment-variables"), {"schema_name": "p", "type": "secret",
                                                          "secret_reference": {"store": "elsewhere", "name": "x"}})
    assert resp.status_code == 404 and resp.json()["code"] == "store_not_found"


def test_an_aws_secret_variable_picks_a_json_field(admin: Api, moto: Moto) -> None:
    name = f"robot-{uuid.uuid4().hex[:8]}"
    moto.admin().create_secret(Name=name, SecretString='{"password": "aws-pw", "username": "r"}')
    key_id, secret_key = moto.admin_keys
    made = admin.store("aws", kind="aws-secretsmanager", vault_url=moto.endpoint,
                       config={"region": AWS_REGION, "endpoint_url": moto.endpoint, "access_key_id": key_id,
                               "secret_access_key": secret_key})
    assert secret_key not in str(made)
    assert admin.secret_var("pw", "aws", f"{name}#password")["secret_reference"]["name"] == f"{name}#password"
