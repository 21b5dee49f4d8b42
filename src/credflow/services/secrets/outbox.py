"""The outbox of secret events: every source of change (builtin writes, the NotifyEnvironmentVariableSecretChange
action, Event Grid and CloudEvents deliveries, the polling reconciler, a read that finds a new version) becomes one
durable ``secret_version_changed(store, name, version)``: a SecretEvent row written in the caller's transaction,
so it exists before the caller answers, and whose commit wakes the worker of every server process. The worker
(``credflow.services.secrets.worker``) applies it, and the poller prunes applied events after a week (``prune_events``).

Deduplication: an event naming a version is keyed by (store, name, version, reach), so a repeated delivery,
whatever its event id, is stored once; one without a version is keyed by its event id when it has one. A
delivery from outside (``DELIVERED``) never shares a key with credflow's own events: a delivery naming a
version before credflow writes or sees it must not make that write's event a duplicate, which would keep
connections from following it.

This module sits below everything else in ``services.secrets`` that raises the event (cache, secret_stores,
rotation, poller) and the worker that applies it, so none of them needs to import another to record one.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credflow.persistence.tables import SecretEvent, SecretStore, new_id, utcnow
from credflow.services.core import Core
from credflow.stores.base import split_field

ENQUEUED = "secret_event_enqueued"  # the in-process signal that wakes the worker
POLLS_CHANGED = "secret_polls_changed"  # a store's polling or a secret's failure changed: the pollers look again
KEEP_EVENTS_DAYS = 7
DELIVERED = frozenset({"eventgrid", "cloudevents"})  # the sources that come from outside, by event key


def _dedupe(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def secret_version_changed(core: Core, s: Session, store: SecretStore, name: str, version: str | None, *,
                           source: str, event_id: str | None = None, scope_user_id: str | None = None,
                           after: str | None = None) -> bool:
    """Record the internal event in ``s``; False when it is a duplicate. The worker wakes after commit."""
    base, _ = split_field(name.strip())
    reach = scope_user_id or "*"
    if version:
        # A reconciler's observation is keyed by the version it moved from, so a later move back is seen.
        delivered = ("delivery",) if source in DELIVERED else ()
        key = _dedupe("v", store.id, base, version, reach, after or "", *delivered)
    elif event_id:
        key = _dedupe("id", store.id, base, event_id, reach)
    else:
        key = _dedupe("n", new_id())
    if s.scalar(select(SecretEvent.id).where(SecretEvent.dedupe_key == key)) is not None:
        return False
    row = SecretEvent(dedupe_key=key, env_id=store.env_id, store_id=store.id, secret_name=base,
                      version=version, source=source, scope_user_id=scope_user_id)
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        return False  # the same event, stored by a concurrent delivery
    core.emit_on_commit(s, ENQUEUED)  # the workers of every server process, once the event is committed
    return True


def prune_events(core: Core) -> int:
    """Forget applied events older than a week: far past Event Grid's last retry (24 h), so a late repeat
    still finds its duplicate; anything later would change nothing anyway (heads move forward only)."""
    cutoff = utcnow() - timedelta(days=KEEP_EVENTS_DAYS)
    with core.db.transaction() as s:
        done = s.execute(delete(SecretEvent).where(SecretEvent.processed_at < cutoff)
                         .execution_options(synchronize_session=False))
        return int(done.rowcount or 0)  # type: ignore[attr-defined]
