"""Secret references and vault names: the two forms a secret variable names its secret by, and how a URL or an
Azure resource id names a vault."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from credflow.domain.errors import RuleViolation

_AZURE_SECRET_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.KeyVault/vaults/"
    r"(?P<vault>[^/]+)/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]+))?/?$",
    re.IGNORECASE,
)
_AZURE_VAULT_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/(?P<vault>[^/]+)/?$",
    re.IGNORECASE,
)
MAX_SECRET_NAME = 500


@dataclass(frozen=True)
class SecretReference:
    store: str | None  # a store id or name
    vault: str | None  # an Azure vault name (resource-id form)
    name: str
    version: str | None = None


def parse_reference(ref: object) -> SecretReference:
    if isinstance(ref, str):
        m = _AZURE_SECRET_ID.match(ref.strip())
        if not m:
            raise RuleViolation(
                "secret_reference must be {store, name, version?} or "
                "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/secrets/{name}",
                code="malformed_secret_reference",
            )
        return SecretReference(store=None, vault=m["vault"], name=m["name"], version=m["version"])
    if isinstance(ref, dict):
        unknown = set(ref) - {"store", "name", "version"}
        store, name, version = ref.get("store"), ref.get("name"), ref.get("version")
        if unknown or not isinstance(store, str) or not store or not isinstance(name, str) or not name.strip():
            raise RuleViolation("secret_reference needs a non-empty store and name (and optionally version)",
                                code="malformed_secret_reference")
        if version is not None and not isinstance(version, str | int):
            raise RuleViolation("secret_reference.version must be a string", code="malformed_secret_reference")
        if len(name) > MAX_SECRET_NAME:
            raise RuleViolation("the secret name is too long", code="malformed_secret_reference")
        return SecretReference(store=store, vault=None, name=name.strip(),
                               version=str(version) if version is not None else None)
    raise RuleViolation("secret_reference is required for a secret variable", code="malformed_secret_reference")


def check_printable(text: str, what: str, code: str) -> str:
    """``text`` without its surrounding blanks, or RuleViolation ``code`` when it holds a control character (a NUL
    no database keeps, a newline no vault names a secret with). The error names ``what``, never the text."""
    kept = text.strip()
    if not kept.isprintable():
        raise RuleViolation(f"{what} may not hold control characters", code=code)
    return kept


def normalize_vault_url(url: str) -> str:
    """Compare vault URLs by scheme and host case-insensitively, without a trailing slash. A URL that cannot be
    split (``http://[::1``) or holds a control character is RuleViolation ``malformed_vault_url``."""
    text = check_printable(url, "a vault URL", "malformed_vault_url")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise RuleViolation("the vault URL is not a URL that can be read (e.g. an unclosed [ in its host)",
                            code="malformed_vault_url") from None
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def azure_vault_name(vault_url: str) -> str | None:
    """``https://NAME.vault.azure.net`` -> ``name`` (first label of the host)."""
    host = urlsplit(vault_url.strip()).hostname
    return host.split(".")[0].lower() if host else None


def vault_name_from_resource_id(text: str) -> str | None:
    m = _AZURE_VAULT_ID.match(text.strip())
    return m["vault"].lower() if m else None
