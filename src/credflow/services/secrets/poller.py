"""The polling reconciler, for vaults that do not send events: every ``poll_interval_seconds`` (per store, 0
turns it off) it asks the vault for the current version of every secret an unpinned secret variable uses.

A new version becomes the same ``secret_version_changed`` event every other source raises. A secret the
vault says is gone or closed turns its connections ``secret_unreadable``; an outage keeps the last good
version serving up to the stale bound; a secret readable again turns them back to ``connected``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from credflow.persistence.tables import EnvironmentVariable, SecretHead, SecretStore, utcnow
from credflow.services.core import RESUMED, Core, in_thread
from credflow.services.secrets import cache, connection_state, outbox
from credflow.stores.base import StoreError, split_field

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0  # between ticks while other processes' wake-ups are not heard (SQLite, or no listener)
QUIET_SECONDS = 30.0  # the longest pause while they are, when no store's poll nor stale bound is due sooner
PRUNE_EVERY_SECONDS = 3600.0


def polled_secrets(s: Session, store_id: str) -> dict[str, list[str]]:
    """base name -> the names (``base``, ``base#FIELD``) unpinned secret variables use."""
    names = s.scalars(select(EnvironmentVariable.secret_name).distinct().where(
        EnvironmentVariable.store_id == store_id, EnvironmentVariable.type == "secret",
        EnvironmentVariable.secret_version.is_(None))).all()
    groups: dict[str, list[str]] = defaultdict(list)
    for name in sorted(n for n in names if n):
        groups[split_field(name)[0]].append(name)
    return dict(groups)


def poll_store(core: Core, store_id: str, interval: float) -> None:
    with core.db.read() as s:
        store = s.get(SecretStore, store_id)
        if store is None:
            return
        s.expunge(store)
        groups = polled_secrets(s, store_id)
        heads = {h.name: (h.current_version, h.error_code, h.checked_at)
                 for h in s.scalars(select(SecretHead).where(SecretHead.store_id == store_id))}
    recent = utcnow() - timedelta(seconds=interval / 2)
    outcomes: dict[str, str | StoreError] = {}
    for base, names in groups.items():
        hs = [heads.get(n) for n in names]
        if all(h is not None and h[1] is None and h[2] is not None and h[2] > recent for h in hs):
            continue  # confirmed lately (by another process, or an event)
        try:
            outcomes[base] = cache.vault_version(core, store, base)
        except StoreError as exc:
            outcomes[base] = exc
    if not outcomes:
        return
    with core.db.transaction() as s:
        fresh: list[str] = []
        for base, outcome in outcomes.items():
            names = groups[base]
            if isinstance(outcome, StoreError):
                if outcome.code in cache.HARD_ERRORS:
                    connection_state.unreadable(s, store, names, outcome.code)
                else:
                    connection_state.failing(core, s, store, names, outcome.code)
                continue
            held = {n: (heads[n][0] if n in heads else None) for n in names}
            behind = [n for n in names if held[n] != outcome]
            if behind:
                outbox.secret_version_changed(core, s, store, base, outcome, source="poll",
                                              after=held[behind[0]] or "")
            elif any(heads[n][1] for n in names):
                connection_state.advance(s, store, names, outcome, checked=True, source="poll")
            else:
                fresh.extend(names)
        if fresh:
            s.execute(update(SecretHead).where(SecretHead.store_id == store_id, SecretHead.name.in_(fresh))
                      .values(checked_at=utcnow()).execution_options(synchronize_session=False))


def _failing_since(core: Core) -> list[datetime]:
    """Since when each secret that fails with an outage (not a hard error) has failed."""
    with core.db.read() as s:
        return [t for t in s.scalars(select(SecretHead.error_since).where(
            SecretHead.error_code.is_not(None), SecretHead.error_code.not_in(list(cache.HARD_ERRORS)))).all()
            if t is not None]


class Poller:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.next_due: dict[str, float] = {}
        self.next_prune = 0.0

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            due = TICK_SECONDS
            try:
                due = self.tick()
            except Exception as exc:  # noqa: BLE001 - one failed tick never stops the poller
                log.error("rotation poller: %s", type(exc).__name__)
            self.rest(due)

    def rest(self, due: float) -> None:
        """Wait ``TICK_SECONDS`` while the other processes are not heard; while they are, until the next poll or
        stale bound is due (``due`` seconds, at most ``QUIET_SECONDS``), or a store or a secret's failure changes
        (``outbox.POLLS_CHANGED``, from any process). Waiting costs no statement."""
        since = time.monotonic()
        while not self.wake.wait(TICK_SECONDS) and not self.stopping.is_set():
            waited = time.monotonic() - since
            if not self.core.listening.is_set() or waited >= min(due, QUIET_SECONDS):
                return

    def tick(self) -> float:
        """Poll the stores that are due, prune old events, enforce the stale bound; returns the seconds until the
        next of these is due."""
        with self.core.db.read() as s:
            stores = s.execute(select(SecretStore.id, SecretStore.poll_interval_seconds)
                               .where(SecretStore.poll_interval_seconds > 0)).all()
        for store_id, interval in stores:
            if self.stopping.is_set():
                return 0.0
            now = time.monotonic()
            if self.next_due.get(store_id, 0.0) <= now:
                self.next_due[store_id] = now + interval
                try:
                    poll_store(self.core, store_id, interval)
                except Exception as exc:  # noqa: BLE001 - one store's trouble never stops the others
                    log.error("rotation poller: store %s: %s", store_id, type(exc).__name__)
        if time.monotonic() >= self.next_prune:
            self.next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            outbox.prune_events(self.core)
        bound = timedelta(seconds=self.core.settings.stale_if_error_seconds)
        now_utc, failing = utcnow(), _failing_since(self.core)
        if any(since + bound < now_utc for since in failing):
            with self.core.db.transaction() as s:
                connection_state.enforce_stale_bound(self.core, s)
        now = time.monotonic()
        due = [self.next_due[sid] - now for sid, _ in stores] + [
            (since + bound - now_utc).total_seconds() for since in failing if since + bound >= now_utc]
        return max(0.0, min(due, default=QUIET_SECONDS))


def start(core: Core) -> Callable[[], None]:
    """Start the poller thread; returns ``stop``."""
    poller = Poller(core)
    for name in (outbox.POLLS_CHANGED, RESUMED):
        core.on(name, poller.wake.set)
    stop = in_thread("credflow-rotation-poller", poller.run, poller.stopping)

    def stop_and_forget() -> None:
        poller.stopping.set()
        poller.wake.set()
        stop()
        for name in (outbox.POLLS_CHANGED, RESUMED):
            hooks = core.hooks.get(name, [])
            if poller.wake.set in hooks:
                hooks.remove(poller.wake.set)

    return stop_and_forget
