"""Store plugins found through the ``credflow.stores`` entry points, at start-up, never at import.

Each entry point is loaded on its own and checked: its ``kind`` is the entry point's name, its ``Config`` is a
``StoreConfig`` model and it has ``open``. One that fails to load or to pass is kept as "not viable" with the
reason, so that the API can say how to fix it instead of crashing: one broken plugin never breaks the app.

A store whose vault SDK comes with an extra (``credflow[vault]``, ``[aws]``, ``[azure]``) guards the SDK's
import, so its module loads without it, and names the extra in ``missing_extra`` when the SDK is not
installed; the registry turns that into the command that fixes it, ``pip install 'credflow[aws]'``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from credflow.stores.base import StoreConfig, StorePlugin

log = logging.getLogger(__name__)

GROUP = "credflow.stores"


@dataclass(frozen=True)
class NotViable:
    """Why a kind of store cannot be used here, and the command that fixes it when one does."""

    reason: str
    install: str | None = None
    config: type[StoreConfig] | None = None  # known when the plugin loaded but its SDK did not

    def __str__(self) -> str:  # the sentence the web form and the API's error show
        return self.reason


@functools.cache
def _store_entry_points() -> tuple[EntryPoint, ...]:
    """The installed store plugins (reading the packages' metadata is slow; it does not change under a process)."""
    return tuple(entry_points(group=GROUP))


@dataclass
class StoreRegistry:
    plugins: dict[str, type[StorePlugin]] = field(default_factory=dict)
    not_viable: dict[str, NotViable] = field(default_factory=dict)

    @classmethod
    def discover(cls) -> StoreRegistry:
        registry = cls()
        for ep in _store_entry_points():
            registry._load(ep)
        return registry

    def get(self, kind: str) -> type[StorePlugin] | None:
        return self.plugins.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self.plugins)

    def _load(self, ep: EntryPoint) -> None:
        try:
            plugin = ep.load()
        except ImportError as exc:
            self._refuse(ep.name, NotViable(f"cannot import {exc.name or exc}: install the package that provides it"))
            return
        except Exception as exc:  # noqa: BLE001 - one broken plugin never breaks the app
            self._refuse(ep.name, NotViable(f"the plugin failed to load ({type(exc).__name__})"))
            return
        problem = _invalid(ep.name, plugin)
        if problem is not None:
            self._refuse(ep.name, NotViable(f"not a secret store plugin: {problem}"))
            return
        extra = getattr(plugin, "missing_extra", None)
        if extra:
            command = f"pip install '{_distribution(ep)}[{extra}]'"
            self._refuse(ep.name, NotViable(f"needs the {extra} extra: {command}", command, plugin.Config))
            return
        self.plugins[ep.name] = plugin

    def _refuse(self, kind: str, why: NotViable) -> None:
        log.warning("secret store kind %s is not viable: %s", kind, why.reason)
        self.not_viable[kind] = why


def _invalid(name: str, plugin: object) -> str | None:
    """What keeps ``plugin`` from being a store plugin registered as ``name``, or None."""
    kind = getattr(plugin, "kind", None)
    if kind != name:
        return f"its kind is {kind!r}, not its entry point's name {name!r}"
    config = getattr(plugin, "Config", None)
    if not (isinstance(config, type) and issubclass(config, StoreConfig)):
        return "its Config is not a StoreConfig (pydantic) model"
    if not callable(getattr(plugin, "open", None)):
        return "it has no open(config, context)"
    return None


def _distribution(ep: EntryPoint) -> str:
    """The distribution to install the extra of: the one that declares the entry point."""
    return ep.dist.name if ep.dist is not None else ep.module.partition(".")[0]
