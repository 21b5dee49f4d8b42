"""Store plugins found through the ``credflow.stores`` entry points, at start-up, never at import.

A plugin that fails to load is logged and skipped; one whose SDK is missing is kept as "not viable", with
the reason, so that the API can say how to fix it instead of crashing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from credflow.stores.base import StorePlugin

log = logging.getLogger(__name__)

GROUP = "credflow.stores"


@dataclass
class StoreRegistry:
    plugins: dict[str, type[StorePlugin]] = field(default_factory=dict)
    not_viable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def discover(cls) -> StoreRegistry:
        registry = cls()
        for ep in entry_points(group=GROUP):
            try:
                plugin = ep.load()
            except ImportError as exc:
                registry.not_viable[ep.name] = f"{exc}; install the package that provides it"
                log.warning("secret store kind %s is not viable: %s", ep.name, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one broken plugin never breaks the app
                log.error("secret store plugin %s failed to load: %s", ep.name, type(exc).__name__)
                continue
            registry.plugins[ep.name] = plugin
        return registry

    def get(self, kind: str) -> type[StorePlugin] | None:
        return self.plugins.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self.plugins)
