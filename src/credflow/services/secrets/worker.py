"""The rotation worker: applies the durable ``secret_version_changed`` events (SecretEvent rows).

For each event: find the names unpinned variables use for the secret, ask the vault for its current
version (the event's own version is a hint, never the truth), put that version in the cache with one vault
read (single-flight), then in one transaction move the heads forward only and every affected connection with
set-based updates, and mark the event processed. A crash at any point leaves the row unprocessed, so the
work is done again after restart; doing it twice changes nothing.

An event's version only ever saves work: when it names the version credflow holds (for a builtin store, that
version or an older one) the vault is not asked and nothing moves. Any other version, whether newer, older,
unknown to the vault, or malformed, makes the worker ask the vault for its current version, and it is that
answer connections follow. So only the vault saying the secret itself is gone or closed to us (not found or
denied for its current version) turns connections ``secret_unreadable``; a version named by an event that the
vault does not have never does.

On SQLite one in-process thread does this, woken as soon as an event is committed, and looking every second
besides. On PostgreSQL every server process runs one and they share the rows with ``FOR UPDATE SKIP LOCKED``:
each event is claimed, prepared and applied in one transaction, and the commit that records an event wakes the
workers of every process (LISTEN/NOTIFY), so while that is heard they look by themselves only every 30 s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.persistence.tables import SecretEvent, SecretHead, SecretStore, utcnow
from credflow.services import metrics
from credflow.services.core import RESUMED, Core
from credflow.services.secrets import cache, cached_versions, connection_state, outbox, verification
from credflow.stores.base import StoreError, Throttled

log = logging.getLogger(__name__)
IDLE_SECONDS = 1.0  # between looks while other processes' events are not heard (SQLite, or no listener)
QUIET_SECONDS = 30.0  # between looks while they are: a safety net (an event a stopped process held) only
MAX_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Pending:
    id: str
    store_id: str
    secret_name: str
    version: str | None
    source: str
    scope_user_id: str | None

    @classmethod
    def of(cls, row: SecretEvent) -> Pending:
        return cls(row.id, row.store_id, row.secret_name, row.version, row.source, row.scope_user_id)


@dataclass
class Plan:
    store: SecretStore | None
    names: list[str] = field(default_factory=list)
    target: str | None = None
    checked: bool = False
    error: StoreError | None = None


def prepare(core: Core, ev: Pending, s: Session | None = None) -> Plan:
    """The vault work of an event. Its reads go through ``s`` when given (on PostgreSQL, the transaction that
    holds the event and applies it), else through a read of their own."""
    if s is None:
        with core.db.read() as own:
            return prepare(core, ev, own)
    store = s.get(SecretStore, ev.store_id)
    if store is None:
        return Plan(None)
    s.expunge(store)
    names = connection_state.referenced_names(s, store.id, ev.secret_name)
    if not names:
        return Plan(store)
    heads = {h.name: (h.current_version, h.error_code) for h in s.execute(
        select(SecretHead.name, SecretHead.current_version, SecretHead.error_code).where(
            SecretHead.store_id == store.id, SecretHead.name.in_(names))).all()}
    if ev.version and not any(err or connection_state.newer(store.kind, ev.version, v)
                              for v, err in (heads.get(n, (None, None)) for n in names)):
        return Plan(store, names)  # what credflow holds, or (builtin) older: nothing to ask the vault
    try:
        target = cache.vault_version(core, store, ev.secret_name)
        for name in names:
            if not cached_versions.has(s, store.id, name, target):  # a builtin write cached its own version
                cache.ensure_cached(core, store, name, target)
        return Plan(store, names, target, checked=True)
    except StoreError as exc:
        return Plan(store, names, error=exc)


def apply(core: Core, s: Session, row: SecretEvent, plan: Plan) -> float | None:
    """Apply a prepared event in ``s``; returns seconds to wait before a retry, or None when done."""
    if plan.store is not None and plan.names:
        if plan.error is None:
            connection_state.advance(s, plan.store, plan.names, plan.target, checked=plan.checked,
                                     source=row.source, owner_id=row.scope_user_id)
            if row.scope_user_id is None:
                verification.due(core, s, plan.store, plan.names)
        elif plan.error.code in cache.HARD_ERRORS:
            connection_state.unreadable(s, plan.store, plan.names, plan.error.code, row.scope_user_id)
        else:
            connection_state.failing(core, s, plan.store, plan.names, plan.error.code)
            retry = plan.error.retry_after if isinstance(plan.error, Throttled) else None
            return retry if retry is not None else 1.0
    row.processed_at = utcnow()
    metrics.rotation_applied((row.processed_at - row.received_at).total_seconds())
    return None


def _next(s: Session, skip: list[str], lock: bool) -> SecretEvent | None:
    q = select(SecretEvent).where(SecretEvent.processed_at.is_(None))
    if skip:
        q = q.where(SecretEvent.id.not_in(skip))
    q = q.order_by(SecretEvent.received_at, SecretEvent.id).limit(1)
    return s.scalar(q.with_for_update(skip_locked=True) if lock else q)


class Worker:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.retry_at: dict[str, float] = {}
        self.failures: dict[str, int] = {}

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                busy = self.step()
            except Exception as exc:  # noqa: BLE001 - a database hiccup: wait, then carry on
                log.error("rotation worker: %s", type(exc).__name__)
                busy = False
            if not busy:
                self.rest()

    def rest(self) -> None:
        """Wait for a wake-up: an event committed in this process, or (PostgreSQL, listening) in any other. Look
        anyway every ``IDLE_SECONDS`` while the others are not heard, when an event's retry is due, and every
        ``QUIET_SECONDS`` otherwise. Waiting costs no statement."""
        since = time.monotonic()
        while not self.wake.wait(IDLE_SECONDS) and not self.stopping.is_set():
            now = time.monotonic()
            if not self.core.listening.is_set() or now - since >= QUIET_SECONDS or any(
                    at <= now for at in self.retry_at.values()):
                return

    def step(self) -> bool:
        """Apply the oldest event due; False when there is none."""
        now = time.monotonic()
        self.retry_at = {eid: at for eid, at in self.retry_at.items() if at > now}  # the others are due
        skip = list(self.retry_at)
        if self.core.db.is_sqlite:
            with self.core.db.read() as s:  # found and prepared in one read, applied in one write
                row = _next(s, skip, lock=False)
                if row is None:
                    return False
                found = Pending.of(row)
                return self._guarded(found.id, lambda: self._apply_sqlite(found, prepare(self.core, found, s)))
        with self.core.db.transaction() as s:  # one transaction per event: claimed, prepared, applied
            row = _next(s, skip, lock=True)
            if row is None:
                return False
            ev = Pending.of(row)
            return self._guarded(ev.id, lambda: self._done(ev.id, apply(self.core, s, row,
                                                                         prepare(self.core, ev, s))))

    def _apply_sqlite(self, ev: Pending, plan: Plan) -> bool:
        with self.core.db.transaction() as s:
            row = s.get(SecretEvent, ev.id)
            if row is None or row.processed_at is not None:
                return True
            return self._done(ev.id, apply(self.core, s, row, plan))

    def _guarded(self, event_id: str, fn: Callable[[], bool]) -> bool:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - this event failed on our side: back off, keep the others moving
            log.error("rotation worker: event %s failed: %s", event_id, type(exc).__name__)
            self._done(event_id, None, failed=True)
            return True

    def _done(self, event_id: str, retry: float | None, failed: bool = False) -> bool:
        if retry is None and not failed:
            self.retry_at.pop(event_id, None)
            self.failures.pop(event_id, None)
            return True
        n = self.failures[event_id] = self.failures.get(event_id, 0) + 1
        delay = retry if retry is not None else min(2.0 ** n, MAX_RETRY_SECONDS)
        self.retry_at[event_id] = time.monotonic() + delay
        return True


def start(core: Core) -> Callable[[], None]:
    """Start the worker thread; returns ``stop``."""
    worker = Worker(core)
    thread = threading.Thread(target=worker.run, name="credflow-rotation-worker", daemon=True)
    core.on(outbox.ENQUEUED, worker.wake.set)
    core.on(RESUMED, worker.wake.set)  # the other processes are heard again: look for what was missed meanwhile
    thread.start()

    def stop() -> None:
        worker.stopping.set()
        worker.wake.set()
        thread.join(timeout=15)
        for name in (outbox.ENQUEUED, RESUMED):
            hooks = core.hooks.get(name, [])
            if worker.wake.set in hooks:
                hooks.remove(worker.wake.set)

    return stop
