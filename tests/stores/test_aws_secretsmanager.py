"""The AWS Secrets Manager store against a moto server that enforces IAM."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from credflow.stores.aws_secretsmanager import (
    AwsSecretsManagerConfig,
    AwsSecretsManagerPlugin,
    AwsSecretsManagerStore,
)
from credflow.stores.base import SecretNotFound, StoreContext, config_fields
from credflow.stores.testing import StoreContractTests
from tests.stores.conftest import AWS_REGION, Moto, free_port


def open_aws(endpoint_url: str, keys: tuple[str, str]) -> AwsSecretsManagerStore:
    config = AwsSecretsManagerConfig(region=AWS_REGION, endpoint_url=endpoint_url, access_key_id=keys[0],
                                     secret_access_key=keys[1])
    return AwsSecretsManagerPlugin.open(config, StoreContext(store_id="aws", vault_url=endpoint_url))


def put(moto: Moto, name: str, value: str) -> str:
    """Create the secret or add a version; the new version takes AWSCURRENT."""
    admin: Any = moto.admin()
    try:
        return str(admin.put_secret_value(SecretId=name, SecretString=value)["VersionId"])
    except admin.exceptions.ResourceNotFoundException:
        return str(admin.create_secret(Name=name, SecretString=value)["VersionId"])


class TestAwsSecretsManagerContract(StoreContractTests):
    missing_version = str(uuid.UUID(int=1))

    @pytest.fixture(autouse=True)
    def _moto(self, moto: Moto, throttling_aws_endpoint: str) -> None:
        self.moto, self.throttling_endpoint = moto, throttling_aws_endpoint

    def make_store(self) -> AwsSecretsManagerStore:
        return open_aws(self.moto.endpoint, self.moto.admin_keys)

    def write_secret(self, name: str, value: str) -> str:
        return put(self.moto, name, value)

    def make_denied_store(self) -> AwsSecretsManagerStore:
        return open_aws(self.moto.endpoint, self.moto.denied_keys)

    def make_unavailable_store(self) -> AwsSecretsManagerStore:
        return open_aws(f"http://127.0.0.1:{free_port()}", self.moto.admin_keys)

    def make_throttled_store(self, name: str) -> AwsSecretsManagerStore:
        """moto never throttles: the store talks to a stub that answers as Secrets Manager does when it does."""
        return open_aws(self.throttling_endpoint, self.moto.admin_keys)


def test_a_plain_name_returns_the_whole_secret_string(moto: Moto) -> None:
    whole = json.dumps({"value": "not picked", "user": "robot"})
    put(moto, "whole-json", whole)
    assert open_aws(moto.endpoint, moto.admin_keys).read("whole-json").value == whole


def test_a_field_of_a_secret_that_is_not_json_is_not_found(moto: Moto) -> None:
    put(moto, "not-json", "plain text value")
    with pytest.raises(SecretNotFound) as caught:
        open_aws(moto.endpoint, moto.admin_keys).read("not-json#password")
    assert "plain text value" not in str(caught.value)


def test_a_secret_is_read_by_its_arn(moto: Moto) -> None:
    version = put(moto, "by-arn", "arn value")
    arn = moto.admin().describe_secret(SecretId="by-arn")["ARN"]
    got = open_aws(moto.endpoint, moto.admin_keys).read(arn)
    assert (got.value, got.version) == ("arn value", version)


def test_the_current_version_follows_the_awscurrent_label(moto: Moto) -> None:
    first = put(moto, "moved-label", "first")
    second = put(moto, "moved-label", "second")
    store = open_aws(moto.endpoint, moto.admin_keys)
    assert store.current_version("moved-label") == second
    moto.admin().update_secret_version_stage(SecretId="moved-label", VersionStage="AWSCURRENT",
                                             MoveToVersionId=first, RemoveFromVersionId=second)
    assert store.current_version("moved-label") == first
    assert store.read("moved-label").value == "first"


def test_a_secret_scheduled_for_deletion_is_not_found_until_it_is_restored(moto: Moto) -> None:
    name = f"scheduled-{uuid.uuid4().hex[:8]}"
    version = put(moto, name, "v")
    store = open_aws(moto.endpoint, moto.admin_keys)
    moto.admin().delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(SecretNotFound):
        store.current_version(name)
    with pytest.raises(SecretNotFound):
        store.read(name)
    moto.admin().restore_secret(SecretId=name)
    assert store.current_version(name) == version


def test_a_malformed_version_id_is_not_found(moto: Moto) -> None:
    put(moto, "short-version", "v")
    with pytest.raises(SecretNotFound):
        open_aws(moto.endpoint, moto.admin_keys).read("short-version", "1")


def test_opening_a_store_does_no_io(moto: Moto) -> None:
    store = open_aws(f"http://127.0.0.1:{free_port()}", moto.admin_keys)
    assert "_client" not in vars(store)


def test_access_keys_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="both"):
        AwsSecretsManagerConfig.model_validate({"region": AWS_REGION, "access_key_id": "AKIA..."})


def test_the_secret_access_key_is_a_write_only_field() -> None:
    assert {f.name for f in config_fields(AwsSecretsManagerConfig) if f.secret} == {"secret_access_key"}


def test_checks_pass_for_keys_that_may_read(moto: Moto) -> None:
    checks = open_aws(moto.endpoint, moto.admin_keys).checks()
    assert [(c.check, c.ok) for c in checks] == [("reachable", True), ("service_can_read", True)]


def test_checks_say_how_to_fix_keys_without_rights(moto: Moto) -> None:
    reachable, can_read = open_aws(moto.endpoint, moto.denied_keys).checks()
    assert reachable.ok and not can_read.ok
    assert "secretsmanager:GetSecretValue" in can_read.detail
    assert moto.denied_keys[1] not in can_read.detail


def test_checks_say_how_to_fix_an_unreachable_endpoint(moto: Moto) -> None:
    reachable, can_read = open_aws(f"http://127.0.0.1:{free_port()}", moto.admin_keys).checks()
    assert not reachable.ok and "endpoint_url" in reachable.detail
    assert not can_read.ok
