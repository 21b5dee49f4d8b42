"""API tokens: users' personal access tokens, and the machines' own.

A user holds any number of named tokens, each shown once when made and kept only as its SHA-256. A token expires
(90 days unless asked otherwise, at most 365) and can be revoked by its user or by whoever may manage the user
(``authz.may_manage_user``); from then on it answers 401. ``last_used_at`` is kept to the minute: a token's row
is written at most once a minute, not on every request (and not while ``principal_cache`` remembers the token).
The token ``POST /users`` returns is one of these, named "initial"; the bootstrap administrator's is named
"bootstrap".

A machine has one token; ``POST /machines/me/token`` replaces it and the old one stops at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import NotFound, RuleViolation, Unauthenticated
from credflow.domain.names import check_name
from credflow.persistence.tables import ApiToken, Machine, User, utcnow
from credflow.services import lookup, views
from credflow.services.access import authz, principal_cache
from credflow.services.core import Actor, Core, new_token

log = logging.getLogger(__name__)

DEFAULT_DAYS = 90
MAX_DAYS = 365
TOUCH_SECONDS = 60  # last_used_at is written at most this often per token


def issue(s: Session, user_id: str, name: str, days: int = DEFAULT_DAYS, token: str | None = None
          ) -> tuple[ApiToken, str]:
    """A new token of the user (``token``: this value, for the bootstrap administrator), in the caller's
    transaction: its row and the token (to show once)."""
    if not 1 <= days <= MAX_DAYS:
        raise RuleViolation(f"a token lives from 1 to {MAX_DAYS} days", code="invalid_expiry", max_days=MAX_DAYS)
    token = token or new_token("cfu")
    row = ApiToken(user_id=user_id, name=name, token_hash=authz.token_hash(token),
                   expires_at=utcnow() + timedelta(days=days))
    s.add(row)
    s.flush()
    return row, token


def view(row: ApiToken) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "created_at": views.ts(row.created_at),
            "expires_at": views.ts(row.expires_at), "last_used_at": views.ts(row.last_used_at),
            "expired": row.expires_at <= utcnow()}


def remembered(core: Core, digest: str) -> Actor | None:
    """The caller a token (by its ``authz.token_hash``) names, when this process still has it in mind
    (``principal_cache``): no database, no thread."""
    return principal_cache.cache(core).get(digest)


def authenticate(core: Core, bearer: str | None, digest: str | None = None) -> Actor:
    """The caller a bearer token names (``authz.authenticate``; ``digest``: its hash, when known), noting when a
    user's token was used. Remembered for ``auth_cache_seconds`` (``principal_cache``)."""
    if bearer and digest is None:
        digest = authz.token_hash(bearer)
    cache = principal_cache.cache(core)
    if digest is not None and (found := cache.get(digest)) is not None:
        return found
    generation = principal_cache.generation()  # before the read: a change committed after it is not remembered
    with core.db.read() as s:
        actor = authz.authenticate(s, bearer, digest)
    if digest is not None:
        cache.put(digest, actor, generation, actor.token_expires_at)
    if actor.token_id is not None:
        last = actor.token_last_used
        if last is None or (utcnow() - last).total_seconds() >= TOUCH_SECONDS:
            _touch(core, actor.token_id)
    return actor


def _touch(core: Core, token_id: str) -> None:
    """``last_used_at = now`` unless another request (or replica) wrote it within the minute. Best effort: a
    failure to note the use never fails the request."""
    now = utcnow()
    try:
        with core.db.transaction() as s:
            s.execute(update(ApiToken).where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - timedelta(seconds=TOUCH_SECONDS)))
                .values(last_used_at=now))
    except Exception:  # the request goes on; the next one tries again
        log.warning("could not note the use of a token", exc_info=True)


# --- the caller's own tokens ------------------------------------------------------------------------------------
def create_mine(core: Core, actor: Actor, name: str, days: int | None) -> dict[str, Any]:
    name = check_name(name, "token", count_blanks=False)
    with core.db.transaction() as s:
        authz.require_user(actor)
        row, token = issue(s, actor.id, name, DEFAULT_DAYS if days is None else days)
        record(s, actor=actor.label, action="token.create", object_type="api_token", object_id=row.id,
               detail={"user": actor.id, "name": name, "expires_at": views.ts(row.expires_at)})
        return {**view(row), "token": token}


def list_tokens(core: Core, actor: Actor, user_ref: str | None = None, limit: int = 50,
                cursor: str | None = None) -> dict[str, Any]:
    """One page of the tokens of the caller (``user_ref`` None) or of a user the caller may manage, newest last."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        user = _owner(s, actor, user_ref)
        return lookup.seek(s, select(ApiToken).where(ApiToken.user_id == user.id), ApiToken.id, limit=limit,
                           cursor=cursor, view=view)


def revoke(core: Core, actor: Actor, token_id: str, user_ref: str | None = None) -> None:
    """Revoke one token of the caller (``user_ref`` None) or of a user the caller may manage; 401 from now on."""
    with core.db.transaction() as s:
        user = _owner(s, actor, user_ref)
        row = s.get(ApiToken, token_id)
        if row is None or row.user_id != user.id:
            raise NotFound(f"token {token_id!r} not found", code="token_not_found")
        record(s, actor=actor.label, action="token.revoke", object_type="api_token", object_id=row.id,
               detail={"user": user.id, "name": row.name})
        s.delete(row)


def _owner(s: Session, actor: Actor, user_ref: str | None) -> User:
    """The user whose tokens are asked for: the caller, or one it may see (404 otherwise) and manage (403)."""
    authz.require_user(actor)
    if user_ref is None or user_ref == actor.id:
        me = s.get(User, actor.id)
        if me is None:
            raise Unauthenticated("the user no longer exists")
        return me
    user = lookup.user_by_id_or_email(s, user_ref)
    visible = authz.visible_user_ids(s, actor)
    if user is None or user.org_id != actor.org_id or (visible is not None and user.id not in visible):
        raise NotFound(f"user {user_ref!r} not found", code="user_not_found")
    authz.require_manage_user(s, actor, user)
    return user


# --- machines ---------------------------------------------------------------------------------------------------
def rotate_machine_token(core: Core, actor: Actor) -> dict[str, Any]:
    """A new token for the calling machine; the one it called with stops now."""
    authz.require_machine(actor)
    with core.db.transaction() as s:
        machine = s.get(Machine, actor.id)
        if machine is None:
            raise Unauthenticated("the machine no longer exists", code="machine_not_found")
        token = new_token(authz.MACHINE_TOKEN_PREFIX.rstrip("_"))
        machine.token_hash = authz.token_hash(token)
        record(s, actor=actor.label, action="machine.token_rotate", env_id=machine.env_id, object_type="machine",
               object_id=machine.id)
        return {"machine_token": token}
