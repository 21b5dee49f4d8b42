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


def echo_values(fields: list[ConfigField], form: FormData | None) -> dict[str, str]:
    """What to fill back into the form after an error: every field but the secret ones."""
    if form is None:
        return {}
    return {f.name: str(form.get(f.input_name) or "") for f in fields if f.kind != "password"}
