"""Failed authentications, per client address: a limit, and one audit record per address and minute.

Every place that checks a credential sent by a caller reports here: bearer tokens (users and machines), event
keys, machine registration tokens and web sign-ins. After ``failed_auth_limit`` failures from one address within
``failed_auth_window_seconds``, the address is locked out until the oldest of them leaves the window: a
credential it has not already used successfully is refused with 429 ``too_many_failed_sign_ins`` without being
checked, so the answer tells nothing about whether it was right. A token or event key that authenticated from
that address before keeps working, so one bad client behind a shared address (a NAT, a proxy) does not stop
the others; a password is never remembered, so web sign-ins from a locked-out address wait.

Failures of tokens and keys are not audited one by one: they are counted in memory and written as one
``auth.failed`` record per client address, minute and environment named, once the minute is over and when the
server stops. Failed web sign-ins keep their own record each (``auth.signin_failed``, naming the account); the
limit bounds them. All of this is per server process: replicas sharing a database count apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from credflow.audit.chain import record
from credflow.domain.errors import TooManyRequests, Unauthenticated
from credflow.persistence.tables import Environment
from credflow.services.access.authz import token_hash
from credflow.services.core import Core

log = logging.getLogger(__name__)
T = TypeVar("T")

MINUTE = 60
KNOWN_GOOD_SECONDS = 3600  # how long a credential that worked from an address passes a lockout there
MAX_TRACKED = 100_000  # addresses (or address and credential pairs) kept before stale ones are dropped
MAX_ADDRESSES_PER_MINUTE = 1_000  # beyond these, a minute's failures are counted together, client "*"
MAX_PATHS = 5  # distinct paths named in one record
MAX_ENVIRONMENTS = 5  # distinct environments counted apart for one address in one minute


@dataclass
class Tally:
    failures: int = 0
    refused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    paths: list[str] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0

    def add(self, now: float, path: str, reason: str | None) -> None:
        if reason is None:
            self.refused += 1
        else:
            self.failures += 1
            self.reasons[reason] += 1
        path = path[:300]
        if path not in self.paths and len(self.paths) < MAX_PATHS:
            self.paths.append(path)
        self.first = min(self.first, now) if self.first else now
        self.last = max(self.last, now)

    def merge(self, other: Tally) -> None:
        self.failures += other.failures
        self.refused += other.refused
        self.reasons.update(other.reasons)
        self.paths += [p for p in other.paths if p not in self.paths][:MAX_PATHS - len(self.paths)]
        self.first = min(self.first, other.first) if self.first else other.first
        self.last = max(self.last, other.last)

    def detail(self, client: str) -> dict[str, object]:
        return {"client": client, "count": self.failures, "refused": self.refused, "reasons": dict(self.reasons),
                "paths": self.paths, "first_at": _iso(self.first), "last_at": _iso(self.last)}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FailedAuth:
    """One process's failures: the sliding windows of the limit, the credentials that worked per address, and
    the audit counts not yet written (by minute, address and environment named)."""

    limit: int
    window: float
    failures: dict[str, deque[float]] = field(default_factory=dict)
    known_good: dict[tuple[str, str], float] = field(default_factory=dict)
    # minute -> client address -> environment named (by the path, unchecked) -> counts
    pending: dict[int, dict[str, dict[str | None, Tally]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self.failures.setdefault(client, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, client: str, digest: str | None = None) -> int:
        """Seconds until ``client`` may try a credential again (0: now). ``digest`` is the hash of a token or key
        being presented: one that worked from this address passes."""
        now = time.monotonic()
        with self.lock:
            q = self._recent(client, now)
            if len(q) < self.limit:
                return 0
            seen = self.known_good.get((client, digest)) if digest is not None else None
            if seen is not None and seen > now - KNOWN_GOOD_SECONDS:
                return 0
            return int(q[len(q) - self.limit] + self.window - now) + 1

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self.lock:
            if len(self.failures) > MAX_TRACKED:
                for key in [k for k, q in self.failures.items() if not q or q[-1] <= now - self.window]:
                    del self.failures[key]
            self._recent(client, now).append(now)

    def succeeded(self, client: str, digest: str) -> None:
        now = time.monotonic()
        with self.lock:
            if len(self.known_good) > MAX_TRACKED:
                stale = [k for k, seen in self.known_good.items() if seen <= now - KNOWN_GOOD_SECONDS]
                for key in stale or list(self.known_good):
                    del self.known_good[key]
            self.known_good[(client, digest)] = now

    def tally(self, client: str, path: str, env_ref: str | None, reason: str | None) -> None:
        """Count a failure (``reason``) or a refusal during a lockout (``None``) for the audit trail."""
        now = time.time()
        with self.lock:
            clients = self.pending.setdefault(int(now // MINUTE), {})
            if client not in clients and len(clients) >= MAX_ADDRESSES_PER_MINUTE:
                client, env_ref = "*", None
            envs = clients.setdefault(client, {})
            if env_ref not in envs and len(envs) >= MAX_ENVIRONMENTS:
                env_ref = None
            envs.setdefault(env_ref, Tally()).add(now, path, reason)

    def take(self, everything: bool = False) -> list[tuple[str, str | None, Tally]]:
        """The counts of the minutes that are over (``everything``: also of this one), removed from here."""
        minute = int(time.time() // MINUTE)
        with self.lock:
            due = sorted(m for m in self.pending if everything or m < minute)
            taken = [self.pending.pop(m) for m in due]
        return [(client, env_ref, counted) for clients in taken for client, envs in clients.items()
                for env_ref, counted in envs.items()]


def state(core: Core) -> FailedAuth:
    found = core.state.get("failed_auth")
    if found is None:
        found = core.state.setdefault("failed_auth", FailedAuth(
            limit=core.settings.failed_auth_limit, window=float(core.settings.failed_auth_window_seconds)))
    assert isinstance(found, FailedAuth)
    return found


def refusal(wait: int) -> TooManyRequests:
    return TooManyRequests(f"too many failed sign-ins from this address; try again in {wait} seconds",
                           code="too_many_failed_sign_ins", retry_after=wait)


def attempt(core: Core, client: str, credential: str, check: Callable[[], T], *, reason: str, path: str,
            env_ref: str | None = None, digest: str | None = None) -> T:
    """``check()`` of a token or key a caller presented, from ``client`` (``digest``: its ``token_hash``, when
    known): refused with 429 while the address is locked out (unless the credential worked from it before); an
    ``Unauthenticated`` from it is counted."""
    limits = state(core)
    digest = digest or token_hash(credential)
    wait = limits.retry_after(client, digest)
    if wait:
        limits.tally(client, path, env_ref, None)
        raise refusal(wait)
    try:
        result = check()
    except Unauthenticated:
        limits.failed(client)
        limits.tally(client, path, env_ref, reason)
        raise
    limits.succeeded(client, digest)
    return result


def password_wait(core: Core, client: str, path: str) -> int:
    """Seconds before ``client`` may try a password again (0: now). Passwords pass no lockout, so while the
    address is locked out every sign-in from it waits, the right password too; each one refused is counted."""
    limits = state(core)
    wait = limits.retry_after(client)
    if wait:
        limits.tally(client, path, None, None)
    return wait


def password_failed(core: Core, client: str) -> None:
    """A wrong password from ``client``: counted for the limit (the sign-in audits itself, naming the account)."""
    state(core).failed(client)


def flush(core: Core, everything: bool = False) -> int:
    """Write the ``auth.failed`` records of the minutes that are over (``everything``: all counted so far);
    returns how many. A failure to write is logged, never raised: it never breaks a request or a shutdown."""
    due = state(core).take(everything)
    if not due:
        return 0
    try:
        with core.db.transaction() as s:
            # An environment the path named that does not exist joins the failures that named none.
            merged: dict[tuple[str, str | None], Tally] = {}
            for client, env_ref, counted in due:
                env = s.get(Environment, env_ref) if env_ref else None
                merged.setdefault((client, env.id if env else None), Tally()).merge(counted)
            for (client, env_id), counted in sorted(merged.items(), key=lambda kv: kv[1].first):
                record(s, actor="anonymous", action="auth.failed", env_id=env_id, detail=counted.detail(client))
        return len(merged)
    except Exception:  # a failure to audit never breaks serving; the counts are logged instead
        log.exception("could not record %d failed authentications", sum(t.failures + t.refused for *_, t in due))
        return 0


def start(core: Core) -> Callable[[], None]:
    """Write each minute's records soon after it ends; the returned ``stop`` writes what is left."""
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.wait(MINUTE - time.time() % MINUTE + 1):
            flush(core)

    thread = threading.Thread(target=loop, name="failed-auth-audit", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=5)
        flush(core, everything=True)

    return stop
