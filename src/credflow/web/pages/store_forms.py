"""A secret store's config form, derived from the kind's declared config model: secret fields (``SecretStr``)
become write-only password inputs that are never filled back in."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import FormData

from credflow.stores.base import StoreConfig

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


def _kind(annotation: Any) -> str:
    if "SecretStr" in repr(annotation):
        return "password"
    args = set(typing.get_args(annotation)) or {annotation}
    if bool in args:
        return "bool"
    if int in args:
        return "number"
    return "text"


def _nested(annotation: Any) -> type[StoreConfig] | None:
    for c in (annotation, *typing.get_args(annotation)):
        if isinstance(c, type) and issubclass(c, StoreConfig):
            return c
    return None


def fields_of(model: type[BaseModel], prefix: str = "", optional: bool = False) -> list[ConfigField]:
    out: list[ConfigField] = []
    for name, info in model.model_fields.items():
        nested = _nested(info.annotation)
        if nested is not None:
            out += fields_of(nested, f"{prefix}{name}.", optional=True)
            continue
        label = (prefix + name).replace(".", " ").replace("_", " ")
        default = None if info.is_required() else info.default
        out.append(ConfigField(prefix + name, label[0].upper() + label[1:], _kind(info.annotation),
                               info.is_required() and not optional, default))
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


def echo_values(fields: list[ConfigField], form: FormData | None) -> dict[str, str]:
    """What to fill back into the form after an error: every field but the secret ones."""
    if form is None:
        return {}
    return {f.name: str(form.get(f.input_name) or "") for f in fields if f.kind != "password"}
