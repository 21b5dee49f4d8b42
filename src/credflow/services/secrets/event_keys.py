"""Event keys: what the Event Grid webhook is authenticated by. A key names its environment; several keys
may be valid at once, so a key is rotated by adding the new one, moving the subscription, then deleting the
old one. Only a hash of each key is kept; the key itself is shown once, when it is made."""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy import select

from credflow.audit.chain import record
from credflow.domain.errors import NotFound, Unauthenticated
from credflow.persistence.tables import EventKey
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.core import Actor, Core, new_token

MAX_KEY_LENGTH = 200


def _view(row: EventKey) -> dict[str, Any]:
    return {"id": row.id, "environment": row.env_id, "created_at": views.ts(row.created_at)}


def create_key(core: Core, actor: Actor, env_id: str) -> dict[str, Any]:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "event_key.admin")
        key = new_token("cfe")
        row = EventKey(env_id=env.id, key_hash=authz.token_hash(key))
        s.add(row)
        s.flush()
        record(s, actor=actor.label, action="event_key.create", env_id=env.id, object_type="event_key",
               object_id=row.id)
        return {**_view(row), "key": key}


def list_keys(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
              ) -> dict[str, Any]:
    """One page of the environment's event keys (ids and creation times), oldest first."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "event_key.admin")
        return lookup.seek(s, select(EventKey).where(EventKey.env_id == env.id), EventKey.id, limit=limit,
                           cursor=cursor, view=_view)


def delete_key(core: Core, actor: Actor, env_id: str, key_id: str) -> None:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "event_key.admin")
        row = s.get(EventKey, key_id)
        if row is None or row.env_id != env.id:
            raise NotFound(f"event key {key_id!r} not found", code="event_key_not_found")
        record(s, actor=actor.label, action="event_key.delete", env_id=env.id, object_type="event_key",
               object_id=row.id)
        s.delete(row)


def authenticate_key(core: Core, key: str | None) -> tuple[str, str]:
    """(key id, environment id) for a valid event key; 401 otherwise."""
    key = (key or "").strip()
    if not key:
        raise Unauthenticated("send an event key as the key query parameter or the aeg-sas-key header",
                              code="missing_event_key")
    if len(key) > MAX_KEY_LENGTH:
        raise Unauthenticated("the event key is not valid", code="invalid_event_key")
    digest = authz.token_hash(key)
    with core.db.read() as s:
        row = s.execute(select(EventKey.id, EventKey.env_id, EventKey.key_hash)
                        .where(EventKey.key_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Unauthenticated("the event key is not valid", code="invalid_event_key")
    return row.id, row.env_id
