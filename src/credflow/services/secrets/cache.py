"""The version cache: one sealed value per (store, secret, version), shared by every credential, connection
and run that uses the secret (its rows: ``cached_versions``). Runs read here; the vault is asked only for a
version credflow lacks. A builtin write caches the version it makes in its own transaction.

Every call to a vault goes through this module: single-flight (callers asking for the same thing at the same
time share one call), a per-store request budget that honours 429 and Retry-After, and a count of the reads
per store. When the vault fails, the last good version keeps serving for ``stale_if_error_seconds``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session

from credflow.persistence.tables import CachedSecret, SecretHead, SecretStore, utcnow
from credflow.services import metrics
from credflow.services.core import Core
from credflow.services.secrets import outbox
from credflow.services.secrets.cached_versions import Resolved, cached, has, opened, remember
from credflow.services.secrets.secret_stores import open_store
from credflow.stores.base import (
    DEFAULT_RETRY_AFTER_SECONDS,
    AccessDenied,
    SecretNotFound,
    SecretValue,
    StoreUnavailable,
    Throttled,
    split_field,
)
from credflow.stores.base import SecretStore as StoreReader

T = TypeVar("T")
# Codes that mean the secret itself is gone or closed to us (deleted, disabled, access withdrawn): connections
# turn secret_unreadable at once. Every other store error is an outage: the last good version keeps serving.
HARD_ERRORS = frozenset({SecretNotFound.code, AccessDenied.code})
STORE_REQUESTS_PER_SECOND = 50.0  # well under Azure Key Vault's 4,000 per 10 s per vault
MAX_BUDGET_WAIT_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0


# --- single-flight and the per-store budget -------------------------------------------------------------
class _Call:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Flights:
    """Callers of ``do`` with the same key while a call is in progress share its outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[tuple[Any, ...], _Call] = {}

    def do(self, key: tuple[Any, ...], fn: Callable[[], T]) -> T:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result  # type: ignore[no-any-return]
        try:
            call.result = fn()
            return call.result  # type: ignore[no-any-return]
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()


class StoreBudget:
    """A token bucket per store; a 429 empties it until Retry-After (or an exponential back-off) has passed."""

    def __init__(self, rate: float = STORE_REQUESTS_PER_SECOND) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()
        self.blocked_until = 0.0
        self.strikes = 0
        self._lock = threading.Lock()

    def acquire(self, max_wait: float) -> None:
        deadline = time.monotonic() + max_wait
        while True:
            with self._lock:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                wait = max(0.0, self.blocked_until - now)
                if wait == 0.0 and self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                wait = wait or (1.0 - self.tokens) / self.rate
            if now + wait > deadline:
                raise Throttled("the store's request budget is spent for now", retry_after=wait)
            time.sleep(wait)

    def throttled(self, retry_after: float | None) -> float:
        with self._lock:
            self.strikes += 1
            delay = retry_after if retry_after is not None else min(
                DEFAULT_RETRY_AFTER_SECONDS * 2 ** (self.strikes - 1), MAX_BACKOFF_SECONDS)
            self.blocked_until = max(self.blocked_until, time.monotonic() + delay)
            self.tokens = 0.0
            return delay

    def succeeded(self) -> None:
        self.strikes = 0


@dataclass
class VaultState:
    flights: Flights = field(default_factory=Flights)
    budgets: dict[str, StoreBudget] = field(default_factory=dict)
    reads: Counter[str] = field(default_factory=Counter)
    version_checks: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def budget(self, store_id: str) -> StoreBudget:
        with self.lock:
            return self.budgets.setdefault(store_id, StoreBudget())


_STATE_LOCK = threading.Lock()


def vault_state(core: Core) -> VaultState:
    """This process's single-flight table, budgets and counters, kept on the core."""
    with _STATE_LOCK:
        state: VaultState = core.state.setdefault("vault", VaultState())
        return state


def _budgeted(core: Core, store_id: str, fn: Callable[[], T], counter: Counter[str]) -> T:
    state = vault_state(core)
    budget = state.budget(store_id)
    budget.acquire(MAX_BUDGET_WAIT_SECONDS)
    with state.lock:
        counter[store_id] += 1
    try:
        result = fn()
    except Throttled as exc:
        exc.retry_after = budget.throttled(exc.retry_after)
        raise
    budget.succeeded()
    return result


def reader(core: Core, store: SecretStore, s: Session | None = None) -> StoreReader:
    if s is not None:
        return open_store(core, s, store)
    with core.db.read() as own:
        return open_store(core, own, store)


def vault_read(core: Core, store: SecretStore, name: str, version: str | None, s: Session | None = None
               ) -> SecretValue:
    """One read of the vault, shared by concurrent callers, within the store's budget."""
    opened = reader(core, store, s)
    state = vault_state(core)
    return state.flights.do(("read", store.id, name, version), lambda: _budgeted(
        core, store.id, lambda: metrics.vault_call(store.kind, lambda: opened.read(name, version)), state.reads))


def vault_version(core: Core, store: SecretStore, name: str) -> str:
    """The version the vault holds as current (without the value where the store can)."""
    base, _ = split_field(name)
    opened = reader(core, store)
    state = vault_state(core)
    return state.flights.do(("version", store.id, base), lambda: _budgeted(
        core, store.id, lambda: metrics.vault_call(store.kind, lambda: opened.current_version(base)),
        state.version_checks))


# --- the cache -----------------------------------------------------------------------------------------------
def ensure_cached(core: Core, store: SecretStore, name: str, version: str) -> None:
    """Have ``version`` in the cache, committed, with one vault read however many ask at once (in this
    process by single-flight, across PostgreSQL processes by an advisory lock on the version)."""
    with core.db.read() as s:
        if has(s, store.id, name, version):
            return

    def fill() -> None:
        if core.db.is_sqlite:  # one process: read outside the write lock, then keep it
            got = vault_read(core, store, name, version)
            with core.db.transaction() as s:
                remember(core, s, store.id, name, got)
            return
        with core.db.transaction() as s:
            s.execute(select(func.pg_advisory_xact_lock(_lock_key(store.id, name, version))))
            if not has(s, store.id, name, version):
                remember(core, s, store.id, name, vault_read(core, store, name, version))

    vault_state(core).flights.do(("fill", store.id, name, version), fill)


def _lock_key(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def head(s: Session, store_id: str, name: str) -> SecretHead:
    row = s.scalar(select(SecretHead).where(SecretHead.store_id == store_id, SecretHead.name == name))
    if row is None:
        row = SecretHead(store_id=store_id, name=name, version_seq=0)
        s.add(row)
        s.flush()
    return row


def fetch(core: Core, s: Session, store: SecretStore, name: str, version: str | None = None) -> Resolved:
    """Read from the vault (latest when ``version`` is None), cache it and, for the latest, move the head;
    a head that moves records ``outbox.secret_version_changed`` so that every connection follows."""
    got = vault_read(core, store, name, version, s)
    remember(core, s, store.id, name, got)
    if version is None:
        h = head(s, store.id, name)
        previous = h.current_version
        if previous != got.version:
            h.current_version = got.version
            h.version_seq += 1
            if previous is not None:
                outbox.secret_version_changed(core, s, store, name, got.version, source="read", after=previous)
        h.checked_at, h.error_code, h.error_since = utcnow(), None, None
    return Resolved(got.value, got.version)


def check_head(core: Core, h: SecretHead | None) -> None:
    """Refuse a secret whose vault said it is gone, or has failed for longer than the stale bound."""
    if h is None or not h.error_code:
        return
    if h.error_code in HARD_ERRORS:
        raise SecretNotFound(f"the vault answered {h.error_code} for this secret")
    if h.error_since is not None and utcnow() - h.error_since > timedelta(
            seconds=core.settings.stale_if_error_seconds):
        raise StoreUnavailable("the vault has failed for longer than the stale-if-error bound")


def resolve(core: Core, s: Session, store: SecretStore, name: str, pinned: str | None = None) -> Resolved:
    """The value a run gets: the pinned version, or the current one credflow knows, from the cache first.
    While the vault fails the cached version keeps serving, up to ``stale_if_error_seconds``."""
    # The head, and the cached value of the version it names (or of the pinned one), in one statement.
    version_of = literal(pinned) if pinned is not None else SecretHead.current_version
    q = (select(SecretHead, CachedSecret)
         .outerjoin(CachedSecret, and_(CachedSecret.store_id == SecretHead.store_id,
                                       CachedSecret.name == SecretHead.name, CachedSecret.version == version_of))
         .where(SecretHead.store_id == store.id, SecretHead.name == name))
    # FOR SHARE: a rotation being applied (it holds the head FOR UPDATE) finishes first, so a connection made
    # now either sees the new version or is seen by the rotation's update.
    locked = q if core.db.is_sqlite else q.with_for_update(read=True, of=SecretHead)
    row = s.execute(locked).first()
    if not core.db.is_sqlite and (row is None or row[1] is None):
        # A rotation committed while FOR SHARE waited: PostgreSQL rechecks only the head row it locked, not the
        # join, so the new head comes without its cached value (or not at all). Asked again, both are seen.
        row = s.execute(locked).first()
    h, hit_row = (row[0], row[1]) if row is not None else (None, None)
    check_head(core, h)
    if hit_row is not None:
        return opened(core, s, hit_row)
    if h is None and pinned is not None:
        hit = cached(core, s, store.id, name, pinned)
        if hit is not None:
            return hit
    return fetch(core, s, store, name, pinned)


def freshness(h: SecretHead | None, now: datetime | None = None) -> dict[str, Any]:
    """How fresh the served version is: when the vault last confirmed it, and since when it has failed."""
    now = now or utcnow()
    stale = h is not None and h.error_code is not None and h.error_code not in HARD_ERRORS
    confirmed = h.checked_at if h is not None else None
    return {"secret_checked_at": confirmed.isoformat().replace("+00:00", "Z") if confirmed else None,
            "secret_age_seconds": int((now - confirmed).total_seconds()) if confirmed else None,
            "secret_stale_since": (h.error_since.isoformat().replace("+00:00", "Z")
                                   if stale and h is not None and h.error_since else None),
            "secret_error": h.error_code if h is not None else None}
