"""The kinds of secret store this server knows: each with its config's JSON schema, and for one it cannot open
(its vault SDK is not installed, or its plugin is broken) why, and the command that fixes it. Read-only over the
registry ``build_core`` discovered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from credflow.services.access import authz
from credflow.services.core import Actor, Core
from credflow.stores.base import StoreConfig


@dataclass(frozen=True)
class StoreKind:
    kind: str
    viable: bool
    detail: str | None  # why the kind cannot be used here
    install: str | None  # the command that makes it usable, when one does
    config_schema: dict[str, Any] | None  # None only when the plugin could not be loaded at all


def list_kinds(core: Core, actor: Actor) -> list[StoreKind]:
    authz.require_user(actor)
    registry = core.registry
    found = [StoreKind(kind, True, None, None, config_schema(plugin.Config))
             for kind, plugin in registry.plugins.items()]
    found += [StoreKind(kind, False, why.reason, why.install, config_schema(why.config) if why.config else None)
              for kind, why in registry.not_viable.items()]
    return sorted(found, key=lambda k: k.kind)


def config_schema(config: type[StoreConfig]) -> dict[str, Any]:
    """The config's JSON schema, where a secret (write-only) field says ``writeOnly: true`` on its own property.

    pydantic marks a ``SecretStr`` so, but an optional one only inside ``anyOf``; the mark is copied up so that a
    client finds it without walking the union."""
    schema = config.model_json_schema()
    for model in [schema, *schema.get("$defs", {}).values()]:
        for field in model.get("properties", {}).values():
            if any(member.get("writeOnly") for member in field.get("anyOf", [])):
                field["writeOnly"] = True
    return schema
