"""The service container: what every use case needs, built once by ``build_core(settings)``."""

from __future__ import annotations

import json
import logging
import secrets as pysecrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from credflow.crypto.envelope import Keyring
from credflow.persistence.barrier import Barrier
from credflow.persistence.db import Database, make_engine, migrate, restrict_sqlite_files
from credflow.persistence.notify import MAX_PAYLOAD_BYTES, Channel, Listener
from credflow.settings import Settings
from credflow.stores.base import SecretStore
from credflow.stores.registry import StoreRegistry

log = logging.getLogger(__name__)
RESUMED = "wakeups_resumed"  # this process hears the other server processes again (after a start or an outage)


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
    token_expires_at: datetime | None = None  # when that token expires

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass
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

    # PostgreSQL: the wake-ups reach every server process on the database (LISTEN/NOTIFY); None on SQLite.
    channel: Channel | None = None
    origin: str = field(default_factory=lambda: pysecrets.token_hex(8))  # this process, in what it sends
    listening: threading.Event = field(default_factory=threading.Event)  # set while it hears the others

    def on(self, name: str, fn: Any) -> None:
        """Subscribe to a wake-up: ``runs_queued`` (waiting machines), ``secret_event_enqueued`` (the rotation
        worker) or ``wakeups_resumed`` (this process hears the other ones again and may have missed some).
        Hooks only wake; no business rule runs in a listener, because a Core built without ``create_app`` has
        none, and ``emit`` swallows their errors."""
        self.hooks.setdefault(name, []).append(fn)

    def emit(self, name: str, *args: Any) -> None:
        """Wake the listeners of ``name`` now, in this process and (PostgreSQL) in every other server process on
        the database, best effort: a listener or a NOTIFY that fails is logged and never breaks the operation that
        signalled, since whoever it would have woken also looks by itself (machines' claims, the worker's idle
        loop). Anything that must happen belongs in the operation's own transaction. Arguments are JSON values."""
        self._wake(name, args)
        if self.channel is None:
            return
        try:
            with self.db.transaction() as s:
                for payload in self._payloads(name, args):
                    self.channel.send(s, payload)
        except Exception:  # the others find the news when they look by themselves
            log.warning("could not tell the other server processes about %s", name, exc_info=True)

    def emit_on_commit(self, s: Session, name: str, *args: Any) -> None:
        """``emit`` once ``s`` commits (nothing if it rolls back): on PostgreSQL the NOTIFY is sent in ``s``'s
        transaction, so the other server processes are woken exactly when what woke them can be seen."""
        if self.channel is not None:
            for payload in self._payloads(name, args):
                self.channel.send(s, payload)
        sa_event.listen(s, "after_commit", lambda _s: self._wake(name, args), once=True)

    def listen(self) -> Callable[[], None]:
        """Hear the other server processes' wake-ups (PostgreSQL) until the returned ``stop`` is called."""
        if self.channel is None:
            return lambda: None

        def resumed() -> None:
            self.listening.set()
            self._wake(RESUMED, ())

        return Listener(self.channel, self._heard, resumed, self.listening.clear).start()

    def _wake(self, name: str, args: tuple[Any, ...] | list[Any]) -> None:
        for fn in self.hooks.get(name, []):
            try:
                fn(*args)
            except Exception:  # a listener never breaks the operation that signalled
                log.exception("listener for %s failed", name)

    def _payloads(self, name: str, args: tuple[Any, ...]) -> Iterator[str]:
        """The NOTIFY payloads of one wake-up: one, or (a long list of machines) the list split in parts."""
        payload = json.dumps({"o": self.origin, "n": name, "a": list(args)}, separators=(",", ":"))
        if len(payload.encode()) <= MAX_PAYLOAD_BYTES:
            yield payload
        elif args and isinstance(args[0], list) and len(args[0]) > 1:
            half = len(args[0]) // 2
            for part in (args[0][:half], args[0][half:]):
                yield from self._payloads(name, (part, *args[1:]))
        else:
            log.warning("a wake-up for %s is too large to send to the other server processes", name)

    def _heard(self, payload: str) -> None:
        """A wake-up from another server process (the listening thread)."""
        try:
            note = json.loads(payload)
            origin, name, args = note["o"], note["n"], note["a"]
        except (ValueError, KeyError, TypeError):
            log.warning("wake-ups: a notification that credflow did not send was ignored")
            return
        if origin != self.origin and isinstance(name, str) and isinstance(args, list):
            self._wake(name, args)


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
                registry=StoreRegistry.discover(), channel=None if engine.dialect.name == "sqlite" else Channel(engine))


def new_token(prefix: str) -> str:
    return f"{prefix}_{pysecrets.token_urlsafe(32)}"


def in_thread(name: str, run: Callable[[], None], stopping: threading.Event) -> Callable[[], None]:
    """Run a background loop (``run``, which returns once ``stopping`` is set) in a daemon thread; returns
    ``stop``, which sets ``stopping`` and waits up to 15 s for the loop to end."""
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=15)

    return stop
