"""Health fixtures: the real vaults (OpenBao, moto, the Key Vault wire stand-in) and reading the health page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from credflow.stores.azure_keyvault import AzureKeyVaultConfig, AzureKeyVaultPlugin, AzureKeyVaultStore
from credflow.stores.base import StoreConfig, StoreContext
from tests.conftest import Api
from tests.rotation.conftest import wait_for
from tests.stores import conftest as backends

openbao, moto, azure = backends.openbao, backends.moto, backends.azure

__all__ = ["LoopbackKeyVaultPlugin", "azure", "findings", "iso", "kinds", "moto", "openbao", "wait_for"]


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def findings(api: Api) -> list[dict[str, Any]]:
    return api.ok(api.get(api.e("/health")))["items"]  # type: ignore[no-any-return]


def kinds(api: Api) -> set[tuple[str, str | None]]:
    """(kind, credential) of each finding the caller sees."""
    return {(f["kind"], f.get("credential")) for f in findings(api)}


class LoopbackKeyVaultPlugin(AzureKeyVaultPlugin):
    """The Key Vault plugin with the SDK's check of the vault's challenge off, since the stand-in vault is
    127.0.0.1 and not a host under vault.azure.net; everything else is the plugin's."""

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> AzureKeyVaultStore:
        assert isinstance(config, AzureKeyVaultConfig)
        return AzureKeyVaultStore(config, context.vault_url, verify_challenge_resource=False,
                                  allow_ambient_credentials=context.allow_ambient_credentials)
