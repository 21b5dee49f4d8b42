"""The contract every secret store keeps, as a pytest mixin: ``StoreContractTests``.

A store's tests subclass it (the class name must start with ``Test``) and provide, as methods:

- ``make_store()``: a store that may read everything the tests write;
- ``write_secret(name, value)``: write a new version of ``name`` in the backend, returning its version;
- ``write_fields(name, fields)``: the same for key/value secrets (default: the fields as a JSON string);
- ``make_denied_store()``: a store whose credentials may not read;
- ``make_unavailable_store()``: a store whose backend cannot be reached;
- ``make_throttled_store(name)``: a store the backend throttles when it reads ``name``;
- ``missing_version``: a well-formed version id that no secret has.

Session state (servers) is usually handed in by an autouse fixture of the subclass that stores it on
``self``. A backend that cannot simulate a condition calls ``pytest.skip`` with the reason. Every test uses
fresh names from ``unique_name()``, so a backend may be shared by the whole session.
"""

from __future__ import annotations

import json
import uuid
from typing import ClassVar

import pytest

from credflow.stores.base import (
    AccessDenied,
    SecretNotFound,
    SecretStore,
    StoreUnavailable,
    Throttled,
)


class StoreContractTests:
    missing_version: ClassVar[str]

    def make_store(self) -> SecretStore:
        raise NotImplementedError

    def write_secret(self, name: str, value: str) -> str:
        raise NotImplementedError

    def write_fields(self, name: str, fields: dict[str, str]) -> str:
        return self.write_secret(name, json.dumps(fields))

    def make_denied_store(self) -> SecretStore:
        raise NotImplementedError

    def make_unavailable_store(self) -> SecretStore:
        raise NotImplementedError

    def make_throttled_store(self, name: str) -> SecretStore:
        raise NotImplementedError

    def unique_name(self) -> str:
        return f"cf-{uuid.uuid4().hex[:16]}"

    def _two_versions(self) -> tuple[str, str, str]:
        name = self.unique_name()
        first = self.write_secret(name, "first value")
        second = self.write_secret(name, "second value")
        assert first != second, "every write must make a new version"
        return name, first, second

    def test_a_plain_read_returns_the_latest_version(self) -> None:
        name, _, second = self._two_versions()
        got = self.make_store().read(name)
        assert (got.value, got.version) == ("second value", second)

    def test_a_read_at_an_older_version_returns_that_version(self) -> None:
        name, first, _ = self._two_versions()
        got = self.make_store().read(name, first)
        assert (got.value, got.version) == ("first value", first)

    def test_the_current_version_is_the_last_one_written(self) -> None:
        name, _, second = self._two_versions()
        assert self.make_store().current_version(name) == second

    def test_a_field_is_picked_out_of_a_key_value_secret(self) -> None:
        name = self.unique_name()
        self.write_fields(name, {"username": "svc-robot", "password": "field value"})
        assert self.make_store().read(f"{name}#password").value == "field value"

    def test_a_missing_field_is_not_found_and_its_error_shows_no_value(self) -> None:
        name = self.unique_name()
        self.write_fields(name, {"password": "do-not-show-me"})
        with pytest.raises(SecretNotFound) as caught:
            self.make_store().read(f"{name}#nope")
        assert "do-not-show-me" not in str(caught.value)

    def test_a_missing_secret_is_not_found(self) -> None:
        store, name = self.make_store(), self.unique_name()
        with pytest.raises(SecretNotFound):
            store.read(name)
        with pytest.raises(SecretNotFound):
            store.current_version(name)

    def test_a_missing_version_is_not_found(self) -> None:
        name = self.unique_name()
        self.write_secret(name, "only value")
        with pytest.raises(SecretNotFound):
            self.make_store().read(name, self.missing_version)

    def test_a_store_without_read_rights_is_denied(self) -> None:
        name = self.unique_name()
        self.write_secret(name, "guarded value")
        store = self.make_denied_store()
        with pytest.raises(AccessDenied) as caught:
            store.read(name)
        assert "guarded value" not in str(caught.value)
        with pytest.raises(AccessDenied):
            store.current_version(name)

    def test_an_unreachable_store_is_unavailable(self) -> None:
        store = self.make_unavailable_store()
        with pytest.raises(StoreUnavailable):
            store.read(self.unique_name())
        with pytest.raises(StoreUnavailable):
            store.current_version(self.unique_name())

    def test_a_throttled_read_says_when_to_retry(self) -> None:
        name = self.unique_name()
        self.write_secret(name, "popular value")
        store = self.make_throttled_store(name)
        with pytest.raises(Throttled) as caught:
            store.read(name)
        assert caught.value.retry_after is not None and caught.value.retry_after > 0
