"""The HashiCorp Vault store against a real OpenBao dev server (KV v2 at ``secret/``)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from credflow.stores.base import AccessDenied, SecretNotFound, StoreContext, Throttled, config_fields
from credflow.stores.hashicorp_vault import HashiCorpVaultConfig, HashiCorpVaultPlugin, HashiCorpVaultStore
from credflow.stores.testing import StoreContractTests
from tests.stores.conftest import OpenBao, free_port, start_openbao

NO_READ_POLICY = """
path "secret/data/*" { capabilities = ["deny"] }
path "secret/metadata/*" { capabilities = ["deny"] }
"""
READER_POLICY = """
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read"] }
"""


def open_vault(address: str, **config: object) -> HashiCorpVaultStore:
    model = HashiCorpVaultConfig.model_validate({"address": address, **config})
    return HashiCorpVaultPlugin.open(model, StoreContext(store_id="vault", vault_url=address))


def write(bao: OpenBao, name: str, fields: dict[str, str]) -> str:
    response = bao.root().secrets.kv.v2.create_or_update_secret(path=name, secret=fields)
    return str(response["data"]["version"])


def approle(bao: OpenBao, policy_text: str, **role: str) -> dict[str, str]:
    """A fresh AppRole whose tokens carry ``policy_text``: its role_id and a secret_id."""
    root, name = bao.root(), f"r{uuid.uuid4().hex[:8]}"
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy(name, policy_text)
    root.auth.approle.create_or_update_approle(name, token_policies=[name], **role)
    role_id = root.auth.approle.read_role_id(name)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(name)["data"]["secret_id"]
    return {"role_id": role_id, "secret_id": secret_id}


def limit_to_one_read_a_minute(bao: OpenBao, name: str) -> None:
    quota = {"path": f"secret/data/{name}", "rate": 1, "interval": "60s"}
    bao.root().write_data(f"sys/quotas/rate-limit/{name}", data=quota)


class TestHashiCorpVaultContract(StoreContractTests):
    missing_version = "999"

    @pytest.fixture(autouse=True)
    def _openbao(self, openbao: OpenBao, tmp_path: Path) -> None:
        self.bao, self.tmp = openbao, tmp_path

    def make_store(self) -> HashiCorpVaultStore:
        return open_vault(self.bao.address, token=self.bao.root_token)

    def write_secret(self, name: str, value: str) -> str:
        return write(self.bao, name, {"value": value})

    def write_fields(self, name: str, fields: dict[str, str]) -> str:
        return write(self.bao, name, fields)

    def make_denied_store(self) -> HashiCorpVaultStore:
        root = self.bao.root()
        root.sys.create_or_update_policy("no-read", NO_READ_POLICY)
        token = root.auth.token.create(policies=["no-read"], ttl="10m")["auth"]["client_token"]
        return open_vault(self.bao.address, token=token)

    def make_unavailable_store(self) -> HashiCorpVaultStore:
        """A store that read from its own server, which then stopped."""
        bao = start_openbao(self.tmp)
        try:
            write(bao, "before-the-stop", {"value": "v"})
            store = open_vault(bao.address, token=bao.root_token)
            assert store.read("before-the-stop").value == "v"
        finally:
            bao.server.stop()
        return store

    def make_throttled_store(self, name: str) -> HashiCorpVaultStore:
        """A rate-limit quota of one read a minute on ``name``, already used up."""
        limit_to_one_read_a_minute(self.bao, name)
        store = self.make_store()
        store.read(name)
        return store


def test_a_plain_name_reads_the_field_named_value(openbao: OpenBao) -> None:
    write(openbao, "plain-name", {"value": "the value", "other": "not this"})
    store = open_vault(openbao.address, token=openbao.root_token)
    assert store.read("plain-name").value == "the value"
    assert store.read("plain-name#other").value == "not this"


def test_a_plain_name_without_a_value_field_is_not_found(openbao: OpenBao) -> None:
    write(openbao, "no-value-field", {"username": "robot"})
    with pytest.raises(SecretNotFound):
        open_vault(openbao.address, token=openbao.root_token).read("no-value-field")


def test_a_secret_in_a_folder_is_read_by_its_path(openbao: OpenBao) -> None:
    version = write(openbao, "team/app/db", {"value": "nested"})
    got = open_vault(openbao.address, token=openbao.root_token).read("team/app/db")
    assert (got.value, got.version) == ("nested", version)


def test_a_version_that_is_not_a_positive_number_is_not_found(openbao: OpenBao) -> None:
    write(openbao, "numbered", {"value": "v"})
    store = open_vault(openbao.address, token=openbao.root_token)
    for version in ("0", "abc", "-1"):
        with pytest.raises(SecretNotFound):
            store.read("numbered", version)


def test_a_deleted_or_destroyed_current_version_is_not_found_and_a_scheduled_deletion_not_yet(
        openbao: OpenBao) -> None:
    kv, store = openbao.root().secrets.kv.v2, open_vault(openbao.address, token=openbao.root_token)
    deleted = f"deleted-{uuid.uuid4().hex[:8]}"
    write(openbao, deleted, {"value": "one"})
    write(openbao, deleted, {"value": "two"})
    kv.delete_latest_version_of_secret(path=deleted)  # `bao kv delete`: the metadata still names version 2
    with pytest.raises(SecretNotFound):
        store.current_version(deleted)
    with pytest.raises(SecretNotFound):
        store.read(deleted)
    scheduled = f"scheduled-{uuid.uuid4().hex[:8]}"
    kv.update_metadata(path=scheduled, delete_version_after="1h")  # every version carries a deletion time ahead
    with pytest.raises(SecretNotFound):
        store.current_version(scheduled)  # metadata, but no version yet
    assert write(openbao, scheduled, {"value": "v"}) == store.current_version(scheduled) == "1"
    kv.destroy_secret_versions(path=scheduled, versions=[1])
    with pytest.raises(SecretNotFound):
        store.current_version(scheduled)


def test_an_approle_reads_secrets(openbao: OpenBao) -> None:
    version = write(openbao, "via-approle", {"value": "approle value"})
    store = open_vault(openbao.address, approle=approle(openbao, READER_POLICY))
    got = store.read("via-approle")
    assert (got.value, got.version) == ("approle value", version)
    assert store.current_version("via-approle") == version


def test_an_approle_with_a_wrong_secret_id_is_denied(openbao: OpenBao) -> None:
    login = approle(openbao, READER_POLICY) | {"secret_id": "wrong-secret-id"}
    with pytest.raises(AccessDenied) as caught:
        open_vault(openbao.address, approle=login).read("anything")
    assert "wrong-secret-id" not in str(caught.value)


def test_an_expired_approle_token_is_replaced_by_logging_in_again(openbao: OpenBao) -> None:
    write(openbao, "short-lived-token", {"value": "still readable"})
    store = open_vault(openbao.address, approle=approle(openbao, READER_POLICY, token_ttl="1s",
                                                        token_max_ttl="1s"))
    assert store.read("short-lived-token").value == "still readable"
    time.sleep(1.5)
    assert store.read("short-lived-token").value == "still readable"


def test_a_throttled_read_waits_as_long_as_vault_says(openbao: OpenBao) -> None:
    write(openbao, "hot-secret", {"value": "v"})
    limit_to_one_read_a_minute(openbao, "hot-secret")
    store = open_vault(openbao.address, token=openbao.root_token)
    store.read("hot-secret")
    with pytest.raises(Throttled) as caught:
        store.read("hot-secret")
    assert caught.value.retry_after is not None and 30 < caught.value.retry_after <= 60


def test_opening_a_store_does_no_io() -> None:
    store = open_vault(f"http://127.0.0.1:{free_port()}", token="never-used")
    assert "_client" not in vars(store)


def test_config_needs_exactly_one_way_to_log_in() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        HashiCorpVaultConfig.model_validate({"address": "http://vault:8200"})
    with pytest.raises(ValueError, match="exactly one"):
        HashiCorpVaultConfig.model_validate({"address": "http://vault:8200", "token": "t",
                                             "approle": {"role_id": "r", "secret_id": "s"}})


def test_the_token_and_secret_id_are_write_only_fields() -> None:
    assert {f.name for f in config_fields(HashiCorpVaultConfig) if f.secret} == {"token", "approle.secret_id"}


def test_checks_pass_for_a_token_that_may_read(openbao: OpenBao) -> None:
    checks = open_vault(openbao.address, token=openbao.root_token).checks()
    assert [(c.check, c.ok) for c in checks] == [("reachable", True), ("service_can_read", True)]


def test_checks_say_how_to_fix_a_token_that_may_not_read(openbao: OpenBao) -> None:
    root = openbao.root()
    root.sys.create_or_update_policy("no-read", NO_READ_POLICY)
    token = root.auth.token.create(policies=["no-read"], ttl="10m")["auth"]["client_token"]
    reachable, can_read = open_vault(openbao.address, token=token).checks()
    assert reachable.ok and not can_read.ok
    assert "secret/data/*" in can_read.detail and token not in can_read.detail


def test_checks_say_how_to_fix_an_unreachable_vault() -> None:
    reachable, can_read = open_vault(f"http://127.0.0.1:{free_port()}", token="t").checks()
    assert not reachable.ok and "check the address" in reachable.detail
    assert not can_read.ok
