"""HashiCorp Vault (and OpenBao) KV version 2 as a secret store.

A secret's name is its path under the KV v2 mount; ``NAME#FIELD`` picks one field and a plain ``NAME`` reads
the field ``value``. Versions are KV v2's integer versions, written as strings; the current version comes
from the metadata endpoint, so polling never reads a value.

Credentials are a token or an AppRole. An AppRole token is fetched on first use and fetched again once when
Vault refuses it, since AppRole tokens expire. The SDK never retries: credflow decides, using
``Throttled.retry_after``. hvac drops response headers when it raises, so a requests hook turns a 429 into
``Throttled`` before hvac sees it. Vault's rate-limit quotas send ``Retry-After`` only when
``sys/quotas/config`` has ``enable_rate_limit_response_headers``; without it ``DEFAULT_RETRY_AFTER_SECONDS``
is suggested.
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
    pick_from_mapping,
    retry_after_seconds,
    split_field,
)

try:
    import hvac
    import hvac.exceptions
    import requests
except ImportError:  # without the vault extra the kind is listed as not viable, with the command that adds it
    _MISSING_EXTRA: str | None = "vault"
else:
    _MISSING_EXTRA = None

T = TypeVar("T")
TIMEOUT_SECONDS = 10


class AppRoleLogin(StoreConfig):
    role_id: str
    secret_id: SecretStr


class HashiCorpVaultConfig(PollingConfig):
    address: str
    mount: str = "secret"
    namespace: str | None = None
    token: SecretStr | None = None
    approle: AppRoleLogin | None = None

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> HashiCorpVaultConfig:
        if (self.token is None) == (self.approle is None):
            raise ValueError("give exactly one of token or approle")
        return self


class HashiCorpVaultStore:
    def __init__(self, config: HashiCorpVaultConfig) -> None:
        self._config = config

    def read(self, name: str, version: str | None = None) -> SecretValue:
        path, field = split_field(name)
        number = _version_number(version)
        response = self._call(
            f"read {path!r}",
            lambda client: client.secrets.kv.v2.read_secret_version(
                path=path, version=number, mount_point=self._config.mount, raise_on_deleted_version=True
            ),
        )
        data = response["data"]
        return SecretValue(pick_from_mapping(data["data"], field), str(data["metadata"]["version"]))

    def current_version(self, name: str) -> str:
        path, _ = split_field(name)
        response = self._call(
            f"read the metadata of {path!r}",
            lambda client: client.secrets.kv.v2.read_secret_metadata(
                path=path, mount_point=self._config.mount
            ),
        )
        return str(response["data"]["current_version"])

    def checks(self) -> list[CheckResult]:
        return [self._check_reachable(), self._check_service_can_read()]

    @cached_property
    def _client(self) -> hvac.Client:
        session = requests.Session()
        session.hooks["response"].append(_raise_when_throttled)
        client = hvac.Client(
            url=self._config.address,
            namespace=self._config.namespace,
            session=session,
            timeout=TIMEOUT_SECONDS,
        )
        if self._config.token is not None:
            client.token = self._config.token.get_secret_value()
        elif self._config.approle is not None:
            _log_in_with_approle(client, self._config.approle)
        return client

    def _call(self, what: str, call: Callable[[hvac.Client], T]) -> T:
        logged_in_before = "_client" in self.__dict__
        try:
            with _translated(what):
                return call(self._client)
        except AccessDenied:
            if self._config.approle is None or not logged_in_before:
                raise
        self.__dict__.pop("_client", None)  # the AppRole token may have expired: log in again, once
        with _translated(what):
            return call(self._client)

    def _check_reachable(self) -> CheckResult:
        address = self._config.address
        client = hvac.Client(url=address, timeout=TIMEOUT_SECONDS)
        try:
            health: Any = client.sys.read_health_status(method="GET", standby_ok=True)
        except requests.RequestException:
            return CheckResult(
                "reachable",
                False,
                f"cannot connect to {address}: check the address, that Vault is running, and that "
                "credflow's host can reach it (DNS, firewall, TLS trust)",
            )
        if isinstance(health, dict):
            return CheckResult("reachable", True, f"Vault at {address} is initialized and unsealed")
        body = _json_or_empty(health)
        if body.get("sealed"):
            fix = "unseal it (`bao operator unseal` / `vault operator unseal`)"
        elif body.get("initialized") is False:
            fix = "initialize it (`vault operator init`)"
        else:
            fix = f"it answered HTTP {health.status_code} to sys/health; check its logs"
        return CheckResult("reachable", False, f"Vault at {address} cannot serve reads: {fix}")

    def _check_service_can_read(self) -> CheckResult:
        mount = self._config.mount
        fix = (
            f"give credflow a valid token or AppRole whose policy allows `read` on {mount}/data/* and "
            f"{mount}/metadata/*"
        )
        everything = f"{mount}/data/*"
        try:
            info = self._call("look up its own token", lambda client: client.auth.token.lookup_self())
            granted = self._call(
                "list its capabilities", lambda client: client.sys.get_capabilities(paths=[everything])
            )
        except AccessDenied:
            return CheckResult("service_can_read", False, f"Vault refused credflow's credentials: {fix}")
        except StoreError as exc:
            return CheckResult("service_can_read", False, f"could not check the credentials: {exc}")
        policies = ", ".join(info["data"].get("policies") or []) or "none"
        if {"read", "root"} & set(granted["data"].get(everything) or []):
            return CheckResult("service_can_read", True, f"credflow may read every secret under {mount}/ "
                               f"(policies: {policies})")
        return CheckResult(
            "service_can_read", False, f"credflow's token is valid (policies: {policies}) but may not read "
            f"{everything}: {fix} (a policy for some paths only still reads those)"
        )


def _log_in_with_approle(client: hvac.Client, approle: AppRoleLogin) -> None:
    try:
        client.auth.approle.login(role_id=approle.role_id, secret_id=approle.secret_id.get_secret_value())
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden):
        raise AccessDenied("Vault refused the AppRole login: check role_id and secret_id") from None


def _raise_when_throttled(response: requests.Response, *args: object, **kwargs: object) -> None:
    if response.status_code == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise Throttled(
            "Vault is rate-limiting credflow (HTTP 429)",
            retry_after=DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after,
        )


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
        raise AccessDenied(f"Vault refused to let credflow {what}") from None
    except hvac.exceptions.InvalidPath:
        raise SecretNotFound(f"Vault has nothing to {what} (no such secret or version)") from None
    except hvac.exceptions.RateLimitExceeded:
        raise Throttled(
            f"Vault is rate-limiting credflow; could not {what}", retry_after=DEFAULT_RETRY_AFTER_SECONDS
        ) from None
    except (
        hvac.exceptions.VaultDown,
        hvac.exceptions.VaultNotInitialized,
        hvac.exceptions.InternalServerError,
        hvac.exceptions.BadGateway,
        requests.RequestException,
    ) as exc:
        raise StoreUnavailable(f"Vault is unavailable; could not {what} ({type(exc).__name__})") from None
    except hvac.exceptions.VaultError as exc:
        raise StoreError(f"Vault failed to {what} ({type(exc).__name__})") from None


def _version_number(version: str | None) -> int | None:
    if version is None:
        return None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:  # Vault reads version 0 as "latest"
        raise SecretNotFound(f"version {version!r} does not exist: KV v2 versions count from 1")
    return int(version)


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class HashiCorpVaultPlugin:
    kind: ClassVar[str] = "hashicorp-vault"
    Config: ClassVar[type[StoreConfig]] = HashiCorpVaultConfig
    missing_extra: ClassVar[str | None] = _MISSING_EXTRA

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> HashiCorpVaultStore:
        if not isinstance(config, HashiCorpVaultConfig):
            raise TypeError(f"expected HashiCorpVaultConfig, got {type(config).__name__}")
        return HashiCorpVaultStore(config)
