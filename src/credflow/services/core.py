"""The service container: what every use case needs, built once by ``build_core(settings)``."""

from __future__ import annotations

import logging
import secrets as pysecrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from credflow.crypto.envelope import Keyring
from credflow.persistence.barrier import Barrier
from credflow.persistence.db import Database, make_engine, migrate, restrict_sqlite_files
from credflow.settings import Settings
from credflow.stores.base import SecretStore
from credflow.stores.registry import StoreRegistry

log = logging.getLogger(__name__)


@dataclass
class Actor:
    """Who calls: a user or a machine (machines reach only their own endpoints)."""

    kind: str  # "user" | "machine"
    id: str
    org_id: str
    name: str = ""
    env_id: str | None = None  # a machine's environment
    token_id: str | None = None  # the API token that authenticated a user (None: a web session, or in process)
    token_last_used: datetime | None = None  # when that token was last used, to the minute

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass
    token_expires_at: datetime | None = None  # when that token expires
class Core:
    settings: Settings
    db: Database
    keyring: Keyring
    barrier: Barrier
    registry: StoreRegistry
    open_stores: dict[tuple[str, str], SecretStore] = field(default_factory=dict)
    hooks: dict[str, list[Any]] = field(default_factory=dict)
    # On SQLite, the machines' writes queue here rather than in SQLite's sleep-and-retry.
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    # Per-process state a service keeps for itself (vault budgets, single-flight), by service name.
    state: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))  # when this process built its core

    def on(self, name: str, fn: Any) -> None:
        """Subscribe to an in-process wake-up: ``runs_queued`` (waiting machines) or ``secret_event_enqueued``
        (the rotation worker). Hooks only wake; no business rule runs in a listener, because a Core built
        without ``create_app`` has none, and ``emit`` swallows their errors."""
        self.hooks.setdefault(name, []).append(fn)

    def emit(self, name: str, *args: Any) -> None:
        """Wake the listeners of ``name``, best effort: a listener that fails is logged and never breaks the
        operation that signalled, since whoever it would have woken polls anyway (machines' claims, the
        worker's idle loop). Anything that must happen belongs in the operation's own transaction."""
        for fn in self.hooks.get(name, []):
            try:
                fn(*args)
            except Exception:  # a listener never breaks the operation that signalled
                log.exception("listener for %s failed", name)


def load_keyring(settings: Settings) -> Keyring:
    if settings.master_key:
        return Keyring.from_env_value(settings.master_key)
    return Keyring.from_file(settings.key_file)


def build_core(settings: Settings) -> Core:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # the database and key file live here
    settings.data_dir.chmod(0o700)  # also when it already existed, made by someone else's umask
    engine = make_engine(settings.resolved_database_url())
    migrate(engine)
    restrict_sqlite_files(engine)
    keyring = load_keyring(settings)
    return Core(settings=settings, db=Database(engine), keyring=keyring, barrier=Barrier(keyring),
                registry=StoreRegistry.discover())


def new_token(prefix: str) -> str:
    return f"{prefix}_{pysecrets.token_urlsafe(32)}"
