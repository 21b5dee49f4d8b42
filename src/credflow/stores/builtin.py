"""The builtin store: secrets kept by credflow itself, encrypted under the barrier, versioned per write."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Protocol

from credflow.stores.base import SecretNotFound, SecretValue, StoreConfig, StoreContext, pick_field, split_field


class BuiltinBackend(Protocol):
    """Implemented by credflow's persistence: raw access to the builtin store's versions."""

    def get(self, store_id: str, name: str, version: int | None) -> tuple[str, int]: ...

    def get_dated(self, store_id: str, name: str, version: int | None
                  ) -> tuple[str, int, datetime | None, datetime | None]:
        """(value, version, created_at, expires_at)."""
        ...

    def current(self, store_id: str, name: str) -> int: ...


class BuiltinConfig(StoreConfig):
    pass


class BuiltinStore:
    def __init__(self, context: StoreContext) -> None:
        self._ctx = context

    def read(self, name: str, version: str | None = None) -> SecretValue:
        base, field = split_field(name)
        raw, got, created, expires = self._ctx.builtin.get_dated(self._ctx.store_id, base, _int_version(version))
        return SecretValue(pick_field(raw, field, whole_when_plain=True), str(got), created, expires)

    def current_version(self, name: str) -> str:
        base, _ = split_field(name)
        return str(self._ctx.builtin.current(self._ctx.store_id, base))


def _int_version(version: str | None) -> int | None:
    if version is None:
        return None
    try:
        return int(version)
    except ValueError:
        raise SecretNotFound(f"version {version!r} does not exist") from None


class BuiltinPlugin:
    kind: ClassVar[str] = "builtin"
    Config: ClassVar[type[StoreConfig]] = BuiltinConfig

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> BuiltinStore:
        return BuiltinStore(context)
