"""Web sessions, kept in the database.

The browser's cookie holds a random secret (256 bits); the database keeps only its SHA-256, with the user, when the
session ends (8 hours after sign-in) and when it was last seen (to the minute). Every request reads the row and
its user, so a sign-out (the row is deleted), a password change (all the user's rows are deleted), and a disabled
or removed user are seen at once by every server process sharing the database, and across restarts.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import NotFound
from credflow.persistence.tables import User, WebSession, utcnow
from credflow.services import views
from credflow.services.access import authz
from credflow.services.core import Actor, Core

log = logging.getLogger(__name__)

SESSION_SECONDS = 8 * 3600
TOUCH_SECONDS = 60


def start(core: Core, user_id: str, via: str, client: str | None, user_agent: str | None) -> str:
    """A new session of the user; returns the secret for the cookie. Expired sessions are cleared on the way."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    with core.db.transaction() as s:
        s.execute(delete(WebSession).where(WebSession.expires_at <= now))
        s.add(WebSession(user_id=user_id, secret_hash=authz.token_hash(secret), via=via,
                         client=(client or "")[:100] or None, user_agent=(user_agent or "")[:300] or None,
                         expires_at=now + timedelta(seconds=SESSION_SECONDS), last_seen_at=now))
    return secret


def find(core: Core, secret: str) -> dict[str, Any] | None:
    """The session of a cookie and what a page needs of its user, or None: no such session (signed out, ended),
    expired, or its user disabled or removed. Notes the use at most once a minute."""
    if not secret:
        return None
    now = utcnow()
    with core.db.read() as s:
        found = s.execute(select(WebSession, User).join(User, User.id == WebSession.user_id)
                          .where(WebSession.secret_hash == authz.token_hash(secret))).first()
        if found is None:
            return None
        session, user = found
        if session.expires_at <= now or not authz.is_active(user):
            return None
        info = {"session_id": session.id, "id": user.id, "org_id": user.org_id, "name": user.name,
                "email": user.email, "must_change_password": bool(user.must_change_password)}
        stale = session.last_seen_at is None or (now - session.last_seen_at).total_seconds() >= TOUCH_SECONDS
    if stale:
        _touch(core, info["session_id"])
    return info


def _touch(core: Core, session_id: str) -> None:
    now = utcnow()
    since = now - timedelta(seconds=TOUCH_SECONDS)
    try:
        with core.db.transaction() as s:
            s.execute(update(WebSession).where(
                WebSession.id == session_id, or_(WebSession.last_seen_at.is_(None), WebSession.last_seen_at < since))
                .values(last_seen_at=now))
    except Exception:  # the page still answers; the next request tries again
        log.warning("could not note the use of a web session", exc_info=True)


def end(core: Core, secret: str) -> None:
    """Sign out: the session of this cookie ends on every server process."""
    if not secret:
        return
    with core.db.transaction() as s:
        s.execute(delete(WebSession).where(WebSession.secret_hash == authz.token_hash(secret)))


def end_all(s: Session, user_id: str) -> int:
    """End every session of a user, in the caller's transaction (password change, disable, removal)."""
    result = s.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def view(row: WebSession, current: str | None = None) -> dict[str, Any]:
    return {"id": row.id, "via": row.via, "client": row.client, "user_agent": row.user_agent,
            "created_at": views.ts(row.created_at), "expires_at": views.ts(row.expires_at),
            "last_seen_at": views.ts(row.last_seen_at), "current": row.id == current}


def list_mine(core: Core, actor: Actor, current: str | None = None) -> list[dict[str, Any]]:
    """The caller's sessions that have not expired (``current``: the id of the one asking)."""
    authz.require_user(actor)
    with core.db.read() as s:
        rows = s.scalars(select(WebSession).where(WebSession.user_id == actor.id, WebSession.expires_at > utcnow())
                         .order_by(WebSession.id)).all()
        return [view(r, current) for r in rows]


def end_mine(core: Core, actor: Actor, session_id: str) -> None:
    """End one of the caller's sessions (on any device)."""
    authz.require_user(actor)
    with core.db.transaction() as s:
        row = s.get(WebSession, session_id)
        if row is None or row.user_id != actor.id:
            raise NotFound(f"session {session_id!r} not found", code="session_not_found")
        s.delete(row)
        record(s, actor=actor.label, action="session.end", object_type="web_session", object_id=session_id,
               detail={"user": actor.id})
