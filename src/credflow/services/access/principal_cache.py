"""Who a bearer token names, remembered for a few seconds, so that a request with a known token reads nothing from
the database.

An entry lives ``auth_cache_seconds`` (half a second by default; 0 turns the cache off) and never past its token's
``expires_at``. Everything that can end or change an identity empties the whole cache of this process the moment
its transaction commits: a token revoked or replaced (a row of ``api_tokens`` deleted, or its hash, user or
expiry changed), a user disabled, removed or renamed, a machine deleted, renamed, moved or given a new token. That
is not a list of operations to keep up to date: any committed change of those rows does it, found by watching
the sessions' flushes and their bulk UPDATE and DELETE statements. Only columns that say nothing about who may
act and are written on every claim (a machine's ``last_seen``) leave the cache alone.

Another replica learns of such a change when its entry ends: within ``auth_cache_seconds``, well inside the second
docs/threat-model.md (14b) allows. A lookup that
started before a change committed is not remembered (each entry carries the generation it was read in), so a
slow request cannot put back what a revocation took away.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session, UOWTransaction

from credflow.persistence.tables import ApiToken, Environment, Machine, Organization, User, utcnow
from credflow.services.core import Actor, Core

WATCHED = (ApiToken, User, Machine, Environment, Organization)
WATCHED_TABLES = frozenset(cls.__tablename__ for cls in WATCHED)
# Columns whose change leaves every identity as it was (written on each heartbeat and claim). A token's
# last_used_at is not among them: written at most once a minute, it is read on a miss to decide the next write.
HARMLESS = frozenset({"last_seen", "last_seen_at"})
MAX_ENTRIES = 50_000
_CHANGED = "credflow_identity_changed"


class _Generation:
    """This process's count of committed identity changes: an entry read in an older generation is dead."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def bump(self) -> None:
        with self.lock:
            self.value += 1


GENERATION = _Generation()


@dataclass
class PrincipalCache:
    seconds: float
    entries: dict[str, tuple[Actor, float, int]] = field(default_factory=dict)  # digest -> actor, until, generation

    def get(self, digest: str) -> Actor | None:
        found = self.entries.get(digest)
        if found is None:
            return None
        actor, until, generation = found
        if generation != GENERATION.value or time.monotonic() >= until:
            self.entries.pop(digest, None)
            return None
        return actor

    def put(self, digest: str, actor: Actor, generation: int, expires_at: datetime | None) -> None:
        if self.seconds <= 0 or generation != GENERATION.value:
            return
        life = self.seconds
        if expires_at is not None:
            life = min(life, (expires_at - utcnow()).total_seconds())
        if life <= 0:
            return
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.clear()
        self.entries[digest] = (actor, time.monotonic() + life, generation)


def cache(core: Core) -> PrincipalCache:
    found = core.state.get("principal_cache")
    if found is None:
        found = core.state.setdefault("principal_cache", PrincipalCache(core.settings.auth_cache_seconds))
    assert isinstance(found, PrincipalCache)
    return found


def generation() -> int:
    """The generation to read an identity in (pass it to ``PrincipalCache.put``)."""
    return GENERATION.value


def forget_all() -> None:
    """Empty the cache of every core in this process (an identity changed outside a watched session)."""
    GENERATION.bump()


# --- watching the sessions ----------------------------------------------------------------------------------
def _changes_identity(obj: Any, deleted: bool) -> bool:
    if not isinstance(obj, WATCHED):
        return False
    if deleted:
        return True
    state: InstanceState[Any] = inspect(obj)
    return any(attr.key not in HARMLESS and attr.history.has_changes() for attr in state.attrs)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _ctx: UOWTransaction, _instances: Any) -> None:
    if session.info.get(_CHANGED):
        return
    if any(_changes_identity(o, True) for o in session.deleted) or \
            any(_changes_identity(o, False) for o in session.dirty):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.session.info.get(_CHANGED):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in WATCHED_TABLES:
        return
    if state.is_update:
        values = getattr(state.statement, "_values", None)
        columns = {getattr(c, "key", str(c)) for c in values} if values else None
        if columns is not None and columns <= HARMLESS:
            return
    state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        GENERATION.bump()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_CHANGED, None)
