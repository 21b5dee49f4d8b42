"""A secret store's config form, derived from the kind's declared config model (read by
``credflow.stores.base.config_fields``): secret fields (``SecretStr``) become write-only password inputs that are
never filled back in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import FormData

from credflow.stores.base import config_fields

PREFIX = "cfg."


@dataclass(frozen=True)
class ConfigField:
    name: str  # dotted for a nested config: "approle.secret_id"
    label: str
    kind: str  # "text" | "password" | "number" | "bool"
    required: bool
    default: Any

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def dom_id(self) -> str:
        return "cfg-" + self.name.replace(".", "-").replace("_", "-")


_INPUT = {"boolean": "bool", "integer": "number"}
_POLL = "How often, in seconds, credflow asks the vault for a new version (0: never; events still count)."
# What each kind's form says under its fields: "vault_url" is the store's own URL field, the rest its settings.
HINTS: dict[str, dict[str, str]] = {
    "builtin": {
        "vault_url": "Leave it empty: credflow calls the store builtin://ENVIRONMENT/NAME. Its secrets are kept "
                     "encrypted by credflow and written on the store's page.",
    },
    "hashicorp-vault": {
        "vault_url": "How events and NotifyEnvironmentVariableSecretChange name this Vault, usually its address, "
                     "e.g. https://vault.example.com:8200",
        "address": "Where credflow reaches Vault or OpenBao, e.g. https://vault.example.com:8200",
        "mount": "The path of the KV version 2 secrets engine (secret, unless it was mounted elsewhere).",
        "namespace": "The Vault Enterprise or OpenBao namespace; leave it empty without namespaces.",
        "token": "A Vault token that may read the mount's data and metadata. Give a token or an AppRole, not both.",
        "approle.role_id": "The role id of an AppRole, instead of a token.",
        "approle.secret_id": "The secret id of that AppRole.",
        "poll_interval_seconds": _POLL,
    },
    "azure-keyvault": {
        "vault_url": "The vault's URI from the Azure portal, e.g. https://NAME.vault.azure.net",
        "tenant_id": "The Microsoft Entra tenant (directory) id the vault belongs to.",
        "client_id": "The application (client) id of the service principal; with a managed identity, the client "
                     "id of a user-assigned identity (empty for the system-assigned one).",
        "client_secret": "The service principal's client secret.",
        "managed_identity": "Sign in as the server's managed identity, only if the operator allows the server's own "
                            "credentials.",
        "authority_host": "Only for a sovereign cloud, e.g. login.chinacloudapi.cn; empty for Azure's public cloud.",
        "ca_bundle": "Only behind a TLS-inspecting proxy: a PEM file on the server to trust.",
        "poll_interval_seconds": _POLL,
    },
    "aws-secretsmanager": {
        "vault_url": "How events and NotifyEnvironmentVariableSecretChange name this store, e.g. "
                     "https://secretsmanager.eu-west-1.amazonaws.com",
        "region": "The AWS region of the secrets, e.g. eu-west-1.",
        "endpoint_url": "Only for a VPC endpoint or a compatible service; empty for AWS's own endpoint.",
        "access_key_id": "The access key id of an IAM user that may read the secrets. Give it with its secret "
                         "access key, or neither (then the server's own role, if the operator allows it).",
        "secret_access_key": "The secret access key of that access key id.",
        "poll_interval_seconds": _POLL,
    },
}


def hints_of(kind: str) -> dict[str, str]:
    """The hints of a kind's form, by field name (``vault_url`` for the store's URL)."""
    return HINTS.get(kind, {})


def fields_of(model: type[BaseModel]) -> list[ConfigField]:
    out: list[ConfigField] = []
    for f in config_fields(model):
        label = f.name.replace(".", " ").replace("_", " ")
        kind = "password" if f.secret else _INPUT.get(f.type, "text")
        out.append(ConfigField(f.name, label[0].upper() + label[1:], kind, f.required, f.default))
    return out


def config_from_form(fields: list[ConfigField], form: FormData) -> dict[str, Any]:
    """The config a form describes: empty inputs are left out, so the kind's defaults apply."""
    config: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f.input_name)
        text = raw.strip() if isinstance(raw, str) and f.kind != "password" else raw
        if not isinstance(text, str) or text == "":
            continue
        value: Any = text
        if f.kind == "bool":
            value = text == "yes"
        elif f.kind == "number":
            value = int(text) if text.lstrip("-").isdigit() else text
        target = config
        *parents, leaf = f.name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return config


def config_patch(fields: list[ConfigField], form: FormData, current: dict[str, Any]) -> dict[str, Any]:
    """What an edit form changes of a store's config (``current``, its public view): a setting that differs from
    its current value, null for one emptied (back to its default); a secret setting only when one is typed (an
    empty one keeps the value the store has)."""
    patch: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f.input_name)
        *parents, leaf = f.name.split(".")
        holder: Any = current
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        now = holder.get(leaf) if isinstance(holder, dict) else None
        value: Any
        if f.kind == "password":
            if not isinstance(raw, str) or raw == "":
                continue
            value = raw
        else:
            text = raw.strip() if isinstance(raw, str) else ""
            if f.kind == "bool":
                value = text == "yes"
                now = bool(now)
            elif f.kind == "number":
                value = int(text) if text.lstrip("-").isdigit() else (text or None)
            else:
                value = text or None
            if value == now:
                continue
        target = patch
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return patch


def current_values(fields: list[ConfigField], current: dict[str, Any]) -> dict[str, str]:
    """A store's public settings as an edit form's inputs show them (never a secret one)."""
    out: dict[str, str] = {}
    for f in fields:
        if f.kind == "password":
            continue
        value: Any = current
        for part in f.name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[f.name] = ("yes" if value else "no") if f.kind == "bool" else ("" if value is None else str(value))
    return out


def echo_values(fields: list[ConfigField], form: FormData | None) -> dict[str, str]:
    """What to fill back into the form after an error: every field but the secret ones."""
    if form is None:
        return {}
    return {f.name: str(form.get(f.input_name) or "") for f in fields if f.kind != "password"}
