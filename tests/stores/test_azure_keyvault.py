"""The Azure Key Vault store through the real SDKs, against the loopback Key Vault wire stand-in."""

from __future__ import annotations

import json
import uuid

import pytest

from credflow.stores.azure_keyvault import AzureKeyVaultConfig, AzureKeyVaultPlugin, AzureKeyVaultStore
from credflow.stores.base import AccessDenied, StoreContext, StoreError, Throttled, config_fields
from credflow.stores.testing import StoreContractTests
from tests.stores.conftest import Azure, AzureApp, free_port


def open_akv(azure: Azure, app: AzureApp | None = None, vault_url: str | None = None, *,
             verify_challenge_resource: bool = False, allow_ambient_credentials: bool = False,
             **config: object) -> AzureKeyVaultStore:
    """The store as the plugin opens it, but with the SDK's challenge check off unless asked for: the stand-in
    vault is 127.0.0.1, not *.vault.azure.net."""
    wire = azure.wire
    settings: dict[str, object] = {
        "tenant_id": wire.tenant_id,
        "authority_host": wire.authority_host,
        "ca_bundle": str(wire.ca_bundle),
    }
    if app is not None:
        settings |= {"client_id": app.client_id, "client_secret": app.client_secret}
    model = AzureKeyVaultConfig.model_validate(settings | config)
    return AzureKeyVaultStore(model, vault_url or wire.vault_url, allow_ambient_credentials=allow_ambient_credentials,
                              verify_challenge_resource=verify_challenge_resource)


class TestAzureKeyVaultContract(StoreContractTests):
    missing_version = uuid.UUID(int=1).hex

    @pytest.fixture(autouse=True)
    def _azure(self, azure: Azure) -> None:
        self.azure = azure

    def make_store(self) -> AzureKeyVaultStore:
        return open_akv(self.azure, self.azure.reader)

    def write_secret(self, name: str, value: str) -> str:
        return self.azure.wire.set_secret(name, value)

    def make_denied_store(self) -> AzureKeyVaultStore:
        return open_akv(self.azure, self.azure.stranger)

    def make_unavailable_store(self) -> AzureKeyVaultStore:
        return open_akv(self.azure, self.azure.reader, vault_url=f"https://127.0.0.1:{free_port()}")

    def make_throttled_store(self, name: str) -> AzureKeyVaultStore:
        self.azure.wire.throttle(name, retry_after=7)
        return self.make_store()


def test_a_plain_name_returns_the_whole_value_even_when_it_is_json(azure: Azure) -> None:
    whole = json.dumps({"value": "not picked", "user": "robot"})
    azure.wire.set_secret("whole-json", whole)
    assert open_akv(azure, azure.reader).read("whole-json").value == whole


def test_a_throttled_read_waits_as_long_as_key_vault_says(azure: Azure) -> None:
    azure.wire.set_secret("hot-secret", "v")
    azure.wire.throttle("hot-secret", retry_after=7)
    with pytest.raises(Throttled) as caught:
        open_akv(azure, azure.reader).read("hot-secret")
    assert caught.value.retry_after == 7


def test_a_wrong_client_secret_is_denied_and_not_echoed(azure: Azure) -> None:
    wrong = AzureApp(azure.reader.client_id, "wrong-client-secret")
    with pytest.raises(AccessDenied) as caught:
        open_akv(azure, wrong).read("anything")
    assert "wrong-client-secret" not in str(caught.value)


def test_a_managed_identity_reads_secrets(azure: Azure, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", azure.wire.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", azure.wire.identity_header)
    azure.wire.let_managed_identity_read()
    version = azure.wire.set_secret("via-managed-identity", "mi value")
    got = open_akv(azure, managed_identity=True, allow_ambient_credentials=True).read("via-managed-identity")
    assert (got.value, got.version) == ("mi value", version)


def test_a_managed_identity_is_denied_without_the_operators_consent(azure: Azure,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", azure.wire.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", azure.wire.identity_header)
    azure.wire.let_managed_identity_read()
    azure.wire.set_secret("not-via-managed-identity", "mi value")
    with pytest.raises(AccessDenied, match="CREDFLOW_ALLOW_AMBIENT_CREDENTIALS"):
        open_akv(azure, managed_identity=True).read("not-via-managed-identity")


def test_verify_challenge_resource_is_no_setting_and_is_ignored_in_a_saved_config() -> None:
    saved = {"tenant_id": "t", "client_id": "c", "client_secret": "s", "verify_challenge_resource": False}
    with pytest.raises(ValueError, match="verify_challenge_resource"):
        AzureKeyVaultConfig.model_validate(saved)
    assert "verify_challenge_resource" not in AzureKeyVaultConfig.from_stored(saved).model_dump()
    assert "verify_challenge_resource" not in {f.name for f in config_fields(AzureKeyVaultConfig)}


def test_the_plugin_keeps_the_sdks_check_of_the_vaults_challenge(azure: Azure) -> None:
    azure.wire.set_secret("challenge-checked", "v")
    config = AzureKeyVaultConfig.model_validate({
        "tenant_id": azure.wire.tenant_id, "authority_host": azure.wire.authority_host,
        "ca_bundle": str(azure.wire.ca_bundle), "client_id": azure.reader.client_id,
        "client_secret": azure.reader.client_secret})
    store = AzureKeyVaultPlugin.open(config, StoreContext(store_id="akv", vault_url=azure.wire.vault_url))
    with pytest.raises(StoreError, match="challenge") as caught:
        store.read("challenge-checked")
    assert "does not match the requested domain" in str(caught.value.__context__)


def test_opening_a_store_does_no_io(azure: Azure) -> None:
    store = open_akv(azure, azure.reader, vault_url=f"https://127.0.0.1:{free_port()}")
    assert "_client" not in vars(store) and "_credential" not in vars(store)


def test_config_needs_one_identity() -> None:
    for config in ({"tenant_id": "t"},
                   {"tenant_id": "t", "client_id": "c", "client_secret": "s", "managed_identity": True},
                   {"tenant_id": "t", "client_secret": "s"}):
        with pytest.raises(ValueError):
            AzureKeyVaultConfig.model_validate(config)


def test_the_client_secret_is_a_write_only_field() -> None:
    assert {f.name for f in config_fields(AzureKeyVaultConfig) if f.secret} == {"client_secret"}


def test_checks_pass_for_an_identity_that_may_read(azure: Azure) -> None:
    checks = open_akv(azure, azure.reader).checks()
    assert [(c.check, c.ok) for c in checks] == [("reachable", True), ("service_can_read", True)]


def test_checks_say_how_to_fix_an_identity_without_rights(azure: Azure) -> None:
    reachable, can_read = open_akv(azure, azure.stranger).checks()
    assert reachable.ok and not can_read.ok
    assert "Key Vault Secrets User" in can_read.detail
    assert azure.stranger.client_secret not in can_read.detail


def test_checks_say_how_to_fix_an_unreachable_vault(azure: Azure) -> None:
    reachable, can_read = open_akv(azure, azure.reader, vault_url=f"https://127.0.0.1:{free_port()}").checks()
    assert not reachable.ok and "vault URL" in reachable.detail
    assert not can_read.ok
