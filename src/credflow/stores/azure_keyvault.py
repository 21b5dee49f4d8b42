"""Azure Key Vault secrets as a secret store.

The vault is the store's ``vault_url`` (``https://NAME.vault.azure.net``); a secret's name is Key Vault's own
and versions are Key Vault's version ids. Key Vault has no read of the current version without the value, so
``current_version`` gets the latest secret and keeps only its version.

Fields: a Key Vault secret is one string, but teams often store JSON in it. ``NAME#FIELD`` picks a field of
a JSON value; a plain ``NAME`` returns the whole value, JSON or not (like AWS), because a plain Key Vault
secret has no field ``value`` and a plain name must read it unchanged.

Identity: a service principal (``client_id`` + ``client_secret``) or a managed identity
(``managed_identity``; ``client_id`` then names a user-assigned identity). A managed identity is the server's
own, so it is used only when the operator sets ``CREDFLOW_ALLOW_AMBIENT_CREDENTIALS``: without it such a store is
refused when registered, and one saved before is denied before any call. The SDK does not retry: credflow
decides, using ``Throttled.retry_after`` from Key Vault's ``Retry-After``.

Settings beyond the API's list, each off by default:

- ``authority_host``: the Microsoft Entra host, for sovereign clouds (``login.chinacloudapi.cn``) or a
  loopback identity endpoint in tests; MSAL's instance discovery (a call to the public cloud) is skipped then.
- ``ca_bundle``: a PEM file trusted for TLS to the vault and the identity endpoint, for TLS-inspecting
  proxies and for the loopback test server's self-signed certificate.

The SDK sends a token only to a host under the resource named in the vault's 401 challenge
(``*.vault.azure.net``), always: that check is no setting (a store saved with ``verify_challenge_resource``,
a setting once, opens with the key ignored). credflow follows no redirect from the vault, and refuses a
``vault_url`` or ``authority_host`` that is or resolves to a link-local address (``credflow.stores.egress``).
Without ``CREDFLOW_ALLOW_AMBIENT_CREDENTIALS`` no request carries ``~/.netrc`` credentials of the host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from pydantic import SecretStr, model_validator

from credflow.stores.base import (
    DEFAULT_RETRY_AFTER_SECONDS,
    AccessDenied,
    CheckResult,
    PollingConfig,
    SecretNotFound,
    SecretValue,
    StoreConfig,
    StoreContext,
    StoreError,
    StoreUnavailable,
    Throttled,
    pick_field,
    retry_after_seconds,
    split_field,
    utc,
)
from credflow.stores.egress import NOT_CALLED, AddressRefused, AmbientCredentialsOff, refuse_link_local, without_netrc

try:
    from azure.core.credentials import TokenCredential
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.core.pipeline.transport import RequestsTransport
    from azure.identity import ClientSecretCredential, ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient
except ImportError:  # without the azure extra the kind is listed as not viable, with the command that adds it
    _MISSING_EXTRA: str | None = "azure"
else:
    _MISSING_EXTRA = None

T = TypeVar("T")
PROBE_NAME = "credflow-access-check"  # read by checks(); its absence proves the right to read


class AzureKeyVaultConfig(PollingConfig):
    tenant_id: str
    client_id: str | None = None
    client_secret: SecretStr | None = None
    managed_identity: bool = False
    authority_host: str | None = None
    ca_bundle: str | None = None

    retired_fields: ClassVar[frozenset[str]] = frozenset({"verify_challenge_resource"})

    @model_validator(mode="after")
    def _one_identity(self) -> AzureKeyVaultConfig:
        if self.managed_identity == (self.client_secret is not None):
            raise ValueError("give client_id and client_secret, or managed_identity: true, not both")
        if self.client_secret is not None and not self.client_id:
            raise ValueError("client_secret needs client_id")
        return self

    def addresses(self) -> dict[str, str]:
        return {"authority_host": self.authority_host} if self.authority_host else {}

    def ambient_identity(self) -> str | None:
        return "a managed identity of credflow's host (managed_identity: true)" if self.managed_identity else None


class AzureKeyVaultStore:
    def __init__(self, config: AzureKeyVaultConfig, vault_url: str, *, allow_ambient_credentials: bool = False,
                 verify_challenge_resource: bool = True) -> None:
        """``verify_challenge_resource`` is the SDK's check of the vault's challenge, kept on by the plugin; only
        a test of a Key Vault-compatible endpoint on another host (127.0.0.1) turns it off."""
        self._config = config
        self._vault_url = vault_url
        self._allow_ambient = allow_ambient_credentials
        self._verify_challenge_resource = verify_challenge_resource

    def read(self, name: str, version: str | None = None) -> SecretValue:
        base, field = split_field(name)
        got = self._call(f"read {base!r}", lambda client: client.get_secret(base, version))
        return SecretValue(pick_field(got.value or "", field, whole_when_plain=True), str(got.properties.version),
                           created_at=utc(got.properties.created_on), expires_at=utc(got.properties.expires_on))

    def current_version(self, name: str) -> str:
        base, _ = split_field(name)
        got = self._call(f"read {base!r}", lambda client: client.get_secret(base))
        return str(got.properties.version)

    def checks(self) -> list[CheckResult]:
        """One read of a secret that should not exist: Key Vault checks the caller's rights before existence."""
        vault = self._vault_url
        reachable = CheckResult("reachable", True, f"{vault} answered")
        fix = (
            "grant credflow's identity the 'Key Vault Secrets User' role on the vault (or an access policy "
            "with secret Get), and check tenant_id, client_id and client_secret"
        )
        try:
            self.read(PROBE_NAME)
        except AddressRefused as exc:
            return [CheckResult("reachable", False, str(exc)), CheckResult("service_can_read", False, NOT_CALLED)]
        except AmbientCredentialsOff as exc:
            return [CheckResult("reachable", False, NOT_CALLED), CheckResult("service_can_read", False, str(exc))]
        except SecretNotFound:
            return [reachable, CheckResult("service_can_read", True, "credflow's identity may read secrets")]
        except StoreUnavailable:
            return [
                CheckResult("reachable", False, f"cannot reach {vault} or the identity endpoint: check the "
                            "vault URL, DNS, firewall, private endpoint and proxy settings"),
                CheckResult("service_can_read", False, "cannot check while the vault is unreachable"),
            ]
        except AccessDenied:
            return [reachable, CheckResult("service_can_read", False, f"Key Vault refused credflow: {fix}")]
        except StoreError as exc:
            return [reachable, CheckResult("service_can_read", False, f"could not check ({exc}); try again")]
        return [reachable, CheckResult("service_can_read", True, "credflow's identity may read secrets")]

    @cached_property
    def _client(self) -> SecretClient:
        return SecretClient(
            self._vault_url,
            self._credential,
            verify_challenge_resource=self._verify_challenge_resource,
            permit_redirects=False,
            retry_total=0,
            **self._transport_options(),
        )

    @cached_property
    def _credential(self) -> TokenCredential:
        config = self._config
        if config.managed_identity:
            if not self._allow_ambient:
                raise AmbientCredentialsOff(
                    "this store uses a managed identity, which is credflow's own, and credflow lends it only when "
                    "the operator sets CREDFLOW_ALLOW_AMBIENT_CREDENTIALS: give the store client_id and "
                    "client_secret"
                )
            return ManagedIdentityCredential(client_id=config.client_id, **self._transport_options())
        assert config.client_id is not None and config.client_secret is not None  # by the config validator
        return ClientSecretCredential(
            config.tenant_id,
            config.client_id,
            config.client_secret.get_secret_value(),
            authority=config.authority_host,
            disable_instance_discovery=config.authority_host is not None,
            **self._transport_options(),
        )

    def _transport_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"connection_verify": self._config.ca_bundle} if self._config.ca_bundle else {}
        if not self._allow_ambient:  # a transport whose session adds no ~/.netrc credentials of the host
            transport = RequestsTransport(**options)
            transport.open()  # makes its session; no I/O
            without_netrc(transport.session)
            options["transport"] = transport
        return options

    def _call(self, what: str, call: Callable[[SecretClient], T]) -> T:
        refuse_link_local(self._vault_url)
        if self._config.authority_host:
            refuse_link_local(self._config.authority_host)
        with _translated(what):
            return call(self._client)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except ClientAuthenticationError:
        raise AccessDenied(f"Microsoft Entra ID or Key Vault refused credflow's identity; could not {what}") from None
    except HttpResponseError as exc:
        raise _from_status(exc, what) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StoreUnavailable(f"Key Vault is unreachable; could not {what} ({type(exc).__name__})") from None
    except AzureError as exc:
        raise StoreError(f"the Azure SDK failed to {what} ({type(exc).__name__})") from None
    except ValueError:  # e.g. the vault's 401 challenge names a resource its host does not belong to
        raise StoreError(
            f"the Key Vault SDK refused to {what}: an invalid name, or a vault_url whose authentication "
            "challenge does not match it"
        ) from None


def _from_status(exc: HttpResponseError, what: str) -> StoreError:
    status = exc.status_code or 0
    if status in (401, 403):  # a disabled secret is refused with 403 too
        return AccessDenied(f"Key Vault refused to let credflow {what} (HTTP {status})")
    if status == 404:
        return SecretNotFound(f"Key Vault has nothing to {what} (no such secret or version)")
    if status == 429:
        headers = getattr(exc.response, "headers", None) or {}
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        return Throttled(
            f"Key Vault is throttling credflow; could not {what}",
            retry_after=DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after,
        )
    if status >= 500:
        return StoreUnavailable(f"Key Vault is unavailable; could not {what} (HTTP {status})")
    return StoreError(f"Key Vault failed to {what} (HTTP {status})")


class AzureKeyVaultPlugin:
    kind: ClassVar[str] = "azure-keyvault"
    Config: ClassVar[type[StoreConfig]] = AzureKeyVaultConfig
    missing_extra: ClassVar[str | None] = _MISSING_EXTRA

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> AzureKeyVaultStore:
        if not isinstance(config, AzureKeyVaultConfig):
            raise TypeError(f"expected AzureKeyVaultConfig, got {type(config).__name__}")
        return AzureKeyVaultStore(config, context.vault_url,
                                  allow_ambient_credentials=context.allow_ambient_credentials)
