"""Event Grid and CloudEvents 1.0 deliveries, read leniently.

Microsoft's own samples carry keys with stray spaces (``"ObjectName "``), values with leading spaces
(``" ee05..."``), camelCase in older revisions and NBF/EXP as strings or numbers. So keys are matched
case-insensitively after trimming, string values are trimmed, numbers may come as strings, and fields we
do not understand are ignored. Only a body that is not JSON, or not events at all, is malformed.

What cannot be what it claims to be is dropped, never refused: a version that no vault could have (blank, over
``MAX_VERSION`` characters, with spaces or control characters) is read as no version at all, and a name,
vault, event id or validation code that cannot be one (too long, with control characters) as absent. An
event's version is only a hint to the worker anyway; the vault's current version is what connections follow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from credflow.domain.errors import Malformed

VALIDATION = "microsoft.eventgrid.subscriptionvalidationevent"
NEW_VERSION = "microsoft.keyvault.secretnewversioncreated"
NEAR_EXPIRY = "microsoft.keyvault.secretnearexpiry"  # 30 days before a version's exp
EXPIRED = "microsoft.keyvault.secretexpired"
MAX_EVENTS = 5000
MAX_VERSION = 200  # Key Vault's versions are 32 hex digits, Secrets Manager's VersionIds 32 to 64 characters
MAX_NAME = 500  # the longest secret name a reference may hold
MAX_VAULT = 2000


@dataclass(frozen=True)
class VaultEvent:
    """One event, reduced to what rotation needs."""

    id: str | None
    type: str  # lower-cased
    schema: str  # "eventgrid" | "cloudevents"
    vaults: tuple[str, ...] = ()  # topic/source first, then the vault URL of data.Id
    name: str | None = None
    version: str | None = None
    object_type: str | None = None
    not_before: float | None = None
    expires: float | None = None

    @property
    def is_secret(self) -> bool:
        return (self.object_type or "secret").lower() == "secret"

    @property
    def is_new_secret_version(self) -> bool:
        return self.type == NEW_VERSION and self.is_secret

    @property
    def is_secret_expiry(self) -> bool:
        """SecretNearExpiry or SecretExpired: the version's ``exp`` (``expires``) is news, not a new version."""
        return self.type in (NEAR_EXPIRY, EXPIRED) and self.is_secret


@dataclass
class Delivery:
    events: list[VaultEvent] = field(default_factory=list)
    validation_code: str | None = None


def _norm(obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(key, str):
            out.setdefault(key.strip().lower(), value.strip() if isinstance(value, str) else value)
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _plain(value: Any, limit: int) -> str | None:
    """Text of at most ``limit`` printable characters, or None."""
    text = _text(value)
    return text if text is not None and len(text) <= limit and text.isprintable() else None


def _version(value: Any) -> str | None:
    text = _plain(value, MAX_VERSION)
    return text if text is not None and not any(c.isspace() for c in text) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _vault(value: Any) -> str | None:
    """A vault URL or resource id that can be compared with the stores' (a URL that splits)."""
    text = _plain(value, MAX_VAULT)
    if text is None:
        return None
    try:
        urlsplit(text)
    except ValueError:  # e.g. an unclosed [ in the host
        return None
    return text


def _vault_of_id(secret_id: str | None) -> str | None:
    """``https://kv.vault.azure.net/secrets/name/version`` -> ``https://kv.vault.azure.net``."""
    if not secret_id:
        return None
    parts = urlsplit(secret_id)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _event(raw: Any, position: int) -> tuple[VaultEvent, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise Malformed(f"event {position} is not a JSON object", code="malformed_event")
    ev = _norm(raw)
    cloud = "specversion" in ev
    kind = _text(ev.get("type") if cloud else ev.get("eventtype"))
    if kind is None:
        raise Malformed(f"event {position} has no {'type' if cloud else 'eventType'}", code="malformed_event")
    data = _data(ev.get("data"))
    vaults = tuple(v for v in (_vault(ev.get("source" if cloud else "topic")), _vault_of_id(_vault(data.get("id"))))
                   if v)
    event = VaultEvent(
        id=_plain(ev.get("id"), MAX_NAME), type=kind.lower(), schema="cloudevents" if cloud else "eventgrid",
        vaults=vaults,
        name=_plain(ev.get("subject"), MAX_NAME) or _plain(data.get("objectname"), MAX_NAME),
        version=_version(data.get("version")),
        object_type=_text(data.get("objecttype")), not_before=_number(data.get("nbf")),
        expires=_number(data.get("exp")))
    return event, data


def _data(raw: Any) -> dict[str, Any]:
    """``data`` is an object, or (some CloudEvents senders) a JSON string holding one."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return _norm(raw) if isinstance(raw, dict) else {}


def _binary(headers: Mapping[str, str], body: Any) -> dict[str, Any] | None:
    """CloudEvents binary mode: the attributes are ``ce-*`` headers and the body is the data."""
    if "ce-specversion" not in headers:
        return None
    attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    return {**attrs, "data": body}


def parse(body: bytes, content_type: str, headers: Mapping[str, str]) -> Delivery:
    """Read a delivery: an Event Grid array, a CloudEvent, a CloudEvents batch, or a binary-mode CloudEvent.
    ``headers`` must have lower-case names."""
    try:
        doc = json.loads(body.decode("utf-8-sig")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise Malformed("the body is not valid JSON", code="malformed_json") from None
    binary = _binary(headers, doc)
    if binary is not None:
        doc = binary
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not doc:
        kind = content_type.split(";")[0].strip() or "application/json"
        raise Malformed(f"a {kind} delivery must hold one event or a non-empty array of events",
                        code="malformed_events")
    if len(doc) > MAX_EVENTS:
        raise Malformed(f"a delivery holds at most {MAX_EVENTS} events", code="too_many_events")
    delivery = Delivery()
    for position, raw in enumerate(doc):
        event, data = _event(raw, position)
        if event.type == VALIDATION:
            delivery.validation_code = _plain(data.get("validationcode"), MAX_NAME)
            if delivery.validation_code is None:
                raise Malformed("the validation event has no data.validationCode", code="malformed_event")
        delivery.events.append(event)
    return delivery
