"""HashiCorp Vault (and OpenBao) KV version 2 as a secret store.

A secret's name is its path under the KV v2 mount; ``NAME#FIELD`` picks one field and a plain ``NAME`` reads
the field ``value``. Versions are KV v2's integer versions, written as strings; the current version comes
from the metadata endpoint, so polling never reads a value. A current version the metadata shows deleted
(``kv delete``) or destroyed, or none at all, is not found there, as a read of the secret would be.

Credentials are a token or an AppRole. An AppRole token is fetched on first use and fetched again once when
Vault refuses it, since AppRole tokens expire. Every client is built with the store's own token (or none, for
the AppRole login and the health check), never the server's: hvac would otherwise send ``VAULT_TOKEN`` or
``~/.vault-token`` of credflow's host to the store's address. ``VAULT_CLIENT_CERT`` and ``~/.netrc`` of the
host are used only with ``CREDFLOW_ALLOW_AMBIENT_CREDENTIALS``. Before connecting, and before following a
redirect, the address is resolved and a link-local one refused (``credflow.stores.egress``).

The SDK never retries: credflow decides, using
``Throttled.retry_after``. hvac drops response headers when it raises, so a requests hook turns a 429 into
``Throttled`` before hvac sees it. Vault's rate-limit quotas send ``Retry-After`` only when
``sys/quotas/config`` has ``enable_rate_limit_response_headers``; without it ``DEFAULT_RETRY_AFTER_SECONDS``
is suggested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, TypeVar
from urllib.parse import urljoin

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
    parse_rfc3339,
    pick_from_mapping,
    retry_after_seconds,
    secret,
    split_field,
)
from credflow.stores.egress import AddressRefused, refuse_link_local, without_netrc

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

    def addresses(self) -> dict[str, str]:
        return {"address": self.address}


class HashiCorpVaultStore:
    def __init__(self, config: HashiCorpVaultConfig, *, allow_ambient_credentials: bool = False) -> None:
        self._config = config
        self._allow_ambient = allow_ambient_credentials

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
        meta = data.get("metadata") or {}
        return SecretValue(pick_from_mapping(data["data"], field), str(meta["version"]),
                           created_at=parse_rfc3339(meta.get("created_time")), expires_at=_expiry(meta))

    def current_version(self, name: str) -> str:
        path, _ = split_field(name)
        response = self._call(
            f"read the metadata of {path!r}",
            lambda client: client.secrets.kv.v2.read_secret_metadata(
                path=path, mount_point=self._config.mount
            ),
        )
        current = str(response["data"]["current_version"])
        if current == "0":  # metadata written before any version
            raise SecretNotFound(f"{path!r} has no version in Vault")
        if _deleted((response["data"].get("versions") or {}).get(current) or {}):
            raise SecretNotFound(f"the current version of {path!r} is deleted in Vault")
        return current

    def checks(self) -> list[CheckResult]:
        return [self._check_reachable(), self._check_service_can_read()]

    @cached_property
    def _client(self) -> hvac.Client:
        client = self._new_client(secret(self._config.token) or "", self._config.namespace, _raise_when_throttled)
        if self._config.approle is not None:
            _log_in_with_approle(client, self._config.approle)
        return client

    def _new_client(self, token: str, namespace: str | None, *hooks: Callable[..., None]) -> hvac.Client:
        """A client that sends ``token`` and nothing of the server's own: hvac reads ``VAULT_TOKEN`` or
        ``~/.vault-token`` when its token is None, ``VAULT_CLIENT_CERT`` when its cert is None, and requests
        reads ``~/.netrc``."""
        session = requests.Session()
        session.hooks["response"].extend([*hooks, _refuse_link_local_redirect])
        ambient: dict[str, Any] = {}
        if not self._allow_ambient:
            without_netrc(session)
            ambient["cert"] = ()  # not None: no client certificate, not VAULT_CLIENT_CERT's
        return hvac.Client(url=self._config.address, token=token, namespace=namespace,
                           session=session, timeout=TIMEOUT_SECONDS, **ambient)

    def _call(self, what: str, call: Callable[[hvac.Client], T]) -> T:
        refuse_link_local(self._config.address)
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
        try:
            refuse_link_local(address)
            health: Any = self._new_client("", None).sys.read_health_status(method="GET", standby_ok=True)
        except AddressRefused as exc:
            return CheckResult("reachable", False, str(exc))
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


def _refuse_link_local_redirect(response: requests.Response, *args: object, **kwargs: object) -> None:
    if response.is_redirect:
        refuse_link_local(urljoin(response.url, response.headers["Location"]))


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


def _deleted(version: dict[str, Any]) -> bool:
    """Whether a version the metadata lists is destroyed, or deleted (``kv delete``: its deletion time has passed;
    with ``delete_version_after`` every version carries one ahead), so that reading it answers 404."""
    if version.get("destroyed"):
        return True
    when = version.get("deletion_time")
    if not when:
        return False
    try:
        return datetime.fromisoformat(when) <= datetime.now(UTC)
    except (TypeError, ValueError):
        return False


def _expiry(meta: dict[str, Any]) -> datetime | None:
    """When a version expires: ``custom_metadata.expires_at`` (RFC 3339) when the secret carries one, else its
    deletion time, which KV v2 sets to ``created_time`` + ``delete_version_after`` when the mount or the secret has
    one (and the read returns)."""
    custom = meta.get("custom_metadata")
    stated = parse_rfc3339(custom.get("expires_at")) if isinstance(custom, dict) else None
    return stated or parse_rfc3339(meta.get("deletion_time"))


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
        return HashiCorpVaultStore(config, allow_ambient_credentials=context.allow_ambient_credentials)
