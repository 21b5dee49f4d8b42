"""A store kind's config schema, read one way for the web form, the API view and sealing: a field annotated
``SecretStr`` is secret (write-only, sealed, never shown); a nested config's fields are dotted."""

from __future__ import annotations

import json

from pydantic import Field, SecretStr

from credflow.stores.base import ConfigField, PollingConfig, StoreConfig, config_fields, split_config
from credflow.web.pages.store_forms import fields_of


class Login(StoreConfig):
    role_id: str
    secret_id: SecretStr


class Kind(PollingConfig):
    address: str = Field(description="where the vault answers")
    token: SecretStr | None = None
    verify: bool = True
    login: Login | None = None


def test_the_fields_of_a_config_in_declaration_order_nested_ones_dotted() -> None:
    assert config_fields(Kind) == [
        ConfigField("poll_interval_seconds", False, False, "integer", None, 60),
        ConfigField("address", True, False, "string", "where the vault answers", None),
        ConfigField("token", False, True, "string", None, None),
        ConfigField("verify", False, False, "boolean", None, True),
        ConfigField("login.role_id", False, False, "string", None, None),  # required only with a login
        ConfigField("login.secret_id", False, True, "string", None, None),
    ]


def test_a_field_is_secret_by_its_annotation_not_by_its_name() -> None:
    class Named(StoreConfig):
        secret_str: str
        key: SecretStr

    assert [(f.name, f.secret) for f in config_fields(Named)] == [("secret_str", False), ("key", True)]


def test_the_form_shows_secret_fields_as_password_inputs() -> None:
    kinds = {f.name: (f.kind, f.required) for f in fields_of(Kind)}
    assert kinds == {"poll_interval_seconds": ("number", False), "address": ("text", True),
                     "token": ("password", False), "verify": ("bool", False),
                     "login.role_id": ("text", False), "login.secret_id": ("password", False)}


def test_the_public_config_never_holds_a_secret_value_and_the_sealed_one_holds_all() -> None:
    config = Kind.model_validate({"address": "https://vault", "token": "s.tok3n",
                                  "login": {"role_id": "r", "secret_id": "s3cret-id"}})
    public, full = split_config(config)
    assert public == {"poll_interval_seconds": 60, "address": "https://vault", "verify": True,
                      "login": {"role_id": "r"}}
    assert "s.tok3n" not in json.dumps(public) and "s3cret-id" not in json.dumps(public)
    assert full == {"poll_interval_seconds": 60, "address": "https://vault", "token": "s.tok3n", "verify": True,
                    "login": {"role_id": "r", "secret_id": "s3cret-id"}}
    assert Kind.model_validate(full) == config


def test_an_unset_secret_field_shows_as_null() -> None:
    public, full = split_config(Kind.model_validate({"address": "https://vault"}))
    assert public["token"] is None and public["login"] is None
    assert full["token"] is None
