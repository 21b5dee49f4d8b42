"""The secret store interface: a store reads a secret's value at a version, and tells the current version.

A store plugin is data plus a small class: a pydantic config model (secret fields typed ``SecretStr``) and
``open(config, context)`` returning a ``SecretStore``. Constructors do no I/O; SDK clients are made lazily.
Every SDK error is translated into one of the ``StoreError`` classes below, and no error text ever holds a
secret value.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol, Self

from pydantic import BaseModel, ConfigDict, SecretStr


@dataclass(frozen=True)
class SecretValue:
    """A version's value, with what the vault says of the version where it says it: when it was made and when it
    expires (Key Vault's ``exp``, Secrets Manager's next rotation, Vault's ``custom_metadata.expires_at`` or
    ``delete_version_after``, the builtin store's ``expires_at``)."""

    value: str
    version: str
    created_at: datetime | None = None
    expires_at: datetime | None = None

    def __repr__(self) -> str:  # never show the value
        return f"SecretValue(version={self.version!r}, value=***)"


class StoreError(Exception):
    """Base of what a store may raise. ``code`` is the stable API code."""

    code = "store_error"


class SecretNotFound(StoreError):
    code = "secret_not_found"


class AccessDenied(StoreError):
    code = "store_access_denied"


class StoreUnavailable(StoreError):
    code = "store_unavailable"


# What a store suggests when a throttling vault says nothing (AWS never does; Vault only with quota headers
# on): the base delay of AWS's own caching client.
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class Throttled(StoreError):
    code = "store_throttled"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreConfig(BaseModel):
    """Base of every kind's config. Unknown fields are refused, except a kind's ``retired_fields`` in a config
    saved before they were removed: ``from_stored`` drops those."""

    model_config = ConfigDict(extra="forbid")
    retired_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Self:
        """A config as saved with a store, once valid: its retired fields are ignored."""
        return cls.model_validate({k: v for k, v in data.items() if k not in cls.retired_fields})

    def addresses(self) -> dict[str, str]:
        """The addresses (URLs or hosts) this config makes credflow connect to, by field name."""
        return {}

    def ambient_identity(self) -> str | None:
        """What of the server's own identity this config would use (a managed identity, AWS's default
        credential chain), said for an operator, or None when the config names its own credentials."""
        return None


class PollingConfig(StoreConfig):
    poll_interval_seconds: int = 60


# --- reading a kind's config schema: the one reader the web form, the API view and sealing use --------------
@dataclass(frozen=True)
class ConfigField:
    """One field of a kind's config."""

    name: str  # dotted for a field of a nested config: "approle.secret_id"
    required: bool  # must be given (a nested config's fields only when the nested config itself must be)
    secret: bool  # annotated ``SecretStr``: write-only, sealed with the barrier, never shown again
    type: str  # "string" | "integer" | "boolean"
    description: str | None
    default: Any  # None for a required field


def _candidates(annotation: Any) -> tuple[Any, ...]:
    """The annotation and, for a union such as ``X | None``, its members."""
    return (annotation, *typing.get_args(annotation))


def _is_secret(annotation: Any) -> bool:
    return any(isinstance(c, type) and issubclass(c, SecretStr) for c in _candidates(annotation))


def _nested_config(annotation: Any) -> type[StoreConfig] | None:
    return next((c for c in _candidates(annotation) if isinstance(c, type) and issubclass(c, StoreConfig)), None)


def _type(annotation: Any) -> str:
    args = set(typing.get_args(annotation)) or {annotation}
    if bool in args:
        return "boolean"
    if int in args:
        return "integer"
    return "string"


def config_fields(config: type[BaseModel]) -> list[ConfigField]:
    """The fields of a kind's config model in declaration order, a nested config's fields flattened under
    dotted names."""
    return _fields(config, "", True)


def _fields(model: type[BaseModel], prefix: str, required: bool) -> list[ConfigField]:
    out: list[ConfigField] = []
    for name, info in model.model_fields.items():
        nested = _nested_config(info.annotation)
        if nested is not None:
            out += _fields(nested, f"{prefix}{name}.", required and info.is_required())
            continue
        out.append(ConfigField(prefix + name, required and info.is_required(), _is_secret(info.annotation),
                               _type(info.annotation), info.description,
                               None if info.is_required() else info.default))
    return out


def split_config(config: StoreConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public, full): ``public`` is what a store's view shows, every field but the value of a secret one (a
    secret field left unset shows as null); ``full`` is the whole config with the secret values revealed, to be
    sealed."""
    secret = {f.name for f in config_fields(type(config)) if f.secret}

    def walk(model: BaseModel, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
        public: dict[str, Any] = {}
        full: dict[str, Any] = {}
        for name in type(model).model_fields:
            value, dotted = getattr(model, name), prefix + name
            if isinstance(value, BaseModel):
                public[name], full[name] = walk(value, dotted + ".")
            elif dotted in secret and value is not None:
                full[name] = value.get_secret_value()
            else:
                public[name] = full[name] = value
        return public, full

    return walk(config, "")


class SecretStore(Protocol):
    def read(self, name: str, version: str | None = None) -> SecretValue:
        """The value at ``version`` (the latest when None). ``name`` may carry ``#FIELD``."""
        ...

    def current_version(self, name: str) -> str:
        """The version the store holds as current for ``name`` (without reading the value if it can)."""
        ...


@dataclass
class StoreContext:
    """What credflow hands a store when it opens one: the store's identity, whether it may use the server's
    own identity and, for the builtin store, access to credflow's own encrypted storage."""

    store_id: str
    vault_url: str
    builtin: Any = None  # credflow.stores.builtin.BuiltinBackend for the builtin kind
    # CREDFLOW_ALLOW_AMBIENT_CREDENTIALS: whether a store may use the server's own identity (a managed identity,
    # AWS's default chain, a client certificate or ~/.netrc credentials of the server's environment).
    allow_ambient_credentials: bool = False


class StorePlugin(Protocol):
    kind: ClassVar[str]
    Config: ClassVar[type[StoreConfig]]

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> SecretStore: ...


def split_field(name: str) -> tuple[str, str | None]:
    """``NAME#FIELD`` -> (NAME, FIELD); ``NAME`` -> (NAME, None)."""
    base, sep, field = name.partition("#")
    return base, (field if sep else None)


def pick_field(raw: str, field: str | None, *, whole_when_plain: bool) -> str:
    """Pick ``field`` out of a JSON object string. A plain name reads ``value`` from key/value secrets, or the
    whole string where ``whole_when_plain`` (AWS)."""
    if field is None and whole_when_plain:
        return raw
    try:
        data = json.loads(raw)
    except ValueError:
        if field is None:
            return raw
        raise SecretNotFound(f"the secret is not a JSON object, so it has no field {field!r}") from None
    return pick_from_mapping(data, field)


def pick_from_mapping(data: Any, field: str | None) -> str:
    key = field or "value"
    if not isinstance(data, dict) or key not in data:
        raise SecretNotFound(f"the secret has no field {key!r}")
    value = data[key]
    return value if isinstance(value, str) else json.dumps(value)


def utc(value: datetime | None) -> datetime | None:
    """A vault's timestamp as an aware UTC datetime (a naive one is read as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_rfc3339(text: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2026-01-02T03:04:05Z``, with fractions and offsets) as UTC, or None when it is
    none. Vault writes nanoseconds, which Python's parser does not take: they are cut to microseconds."""
    if not isinstance(text, str) or not text.strip():
        return None
    raw = text.strip().replace("z", "Z")
    head, dot, rest = raw.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        raw = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or "T" not in raw.upper():  # RFC 3339 has both a time and an offset
        return None
    return utc(parsed)


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def retry_after_seconds(header: str | None) -> float | None:
    """An HTTP ``Retry-After`` header (delta-seconds or an HTTP date) as seconds from now."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class CheckResult:
    check: str  # "reachable" | "service_can_read" | ...
    ok: bool
    detail: str
