"""Passwords for signing in to the web pages: a system administrator sets a first one, the user changes it.

Only argon2id hashes are kept. Signing in compares against a dummy hash when the email is unknown or has no
password, so the time taken does not say which emails exist. No password ever reaches a log, an error or an
audit record.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from credflow.audit.chain import record
from credflow.domain.errors import Forbidden, NotFound, RuleViolation, Unauthenticated
from credflow.persistence.tables import EnvironmentRoleGrant, User
from credflow.services import lookup
from credflow.services.access import authz, sessions
from credflow.services.core import Actor, Core

log = logging.getLogger(__name__)

MIN_LENGTH = 12
MAX_LENGTH = 1024
_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("credflow-dummy-password-for-equal-timing")


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def check_strength(password: Any, email: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise RuleViolation(f"a password has at least {MIN_LENGTH} characters", code="weak_password")
    if len(password) > MAX_LENGTH:
        raise RuleViolation(f"a password has at most {MAX_LENGTH} characters", code="weak_password")
    if password.strip().lower() == email.strip().lower():
        raise RuleViolation("a password may not be the email address", code="weak_password")
    return password


def set_password(core: Core, actor: Actor, user_id: str, password: str) -> dict[str, Any]:
    """Someone who may manage the user (``authz.may_manage_user``) sets its password. Set for someone else it is
    a first password the user must change at the next sign-in; set for oneself it is one's own choice."""
    with core.db.transaction() as s:
        authz.require_user(actor)
        if not authz.administered_envs(s, actor.id) and not authz.is_organization_admin(s, actor.id):
            raise Forbidden("only system administrators set passwords for users")
        user = lookup.user_by_id_or_email(s, user_id)
        visible = authz.visible_user_ids(s, actor)
        if user is None or user.org_id != actor.org_id or (visible is not None and user.id not in visible):
            raise NotFound(f"user {user_id!r} not found", code="user_not_found")
        if user.id != actor.id:
            authz.require_manage_user(s, actor, user)
        check_strength(password, user.email)
        user.password_hash = _hasher.hash(password)
        user.must_change_password = user.id != actor.id
        ended = sessions.end_all(s, user.id)
        record(s, actor=actor.label, action="user.password_set", object_type="user", object_id=user.id,
               detail={"must_change_password": user.must_change_password, "sessions_ended": ended})
        return {"id": user.id, "email": user.email, "must_change_password": user.must_change_password}


def change_password(core: Core, actor: Actor, current: str, new: str) -> None:
    """The signed-in user replaces their password, proving the current one."""
    authz.require_user(actor)
    with core.db.read() as s:
        user = s.get(User, actor.id)
        if user is None:
            raise Unauthenticated("the user no longer exists")
        ok = _verify(user.password_hash, current)
    if not ok:
        with core.db.transaction() as s:
            record(s, actor=actor.label, action="auth.password_change_failed", object_type="user",
                   object_id=actor.id, detail={"reason": "wrong_current_password"})
        raise Forbidden("the current password is not right", code="wrong_password")
    with core.db.transaction() as s:
        user = s.get(User, actor.id)
        assert user is not None
        check_strength(new, user.email)
        if _verify(user.password_hash, new):
            raise RuleViolation("the new password must differ from the current one", code="password_unchanged")
        user.password_hash = _hasher.hash(new)
        user.must_change_password = False
        ended = sessions.end_all(s, user.id)  # the page that changed it starts a new one
        record(s, actor=actor.label, action="user.password_change", object_type="user", object_id=user.id,
               detail={"sessions_ended": ended})


def sign_in(core: Core, email: str, password: str, client: str | None) -> Actor:
    """The user with this email and password, or ``Unauthenticated`` (the same answer whatever was wrong).
    A failure is audited as ``auth.signin_failed`` with the email and the client address."""
    with core.db.read() as s:
        user = s.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        stored = user.password_hash if user is not None else None
        ok = _verify(stored, password)
        actor = Actor(kind="user", id=user.id, org_id=user.org_id, name=user.name) if user is not None else None
    if ok and actor is not None:
        _rehash_if_needed(core, actor.id, stored, password)
        return actor
    reason = "unknown_email" if user is None else ("no_password" if stored is None else "wrong_password")
    _record_failure(core, email, client, reason, actor.id if actor else None)
    raise Unauthenticated("the email or the password is not right", code="sign_in_failed")


def _record_failure(core: Core, email: str, client: str | None, reason: str, user_id: str | None) -> None:
    try:
        with core.db.transaction() as s:
            env_id = None
            if user_id is not None:
                env_id = s.scalar(select(EnvironmentRoleGrant.env_id).where(EnvironmentRoleGrant.user_id == user_id)
                                  .order_by(EnvironmentRoleGrant.env_id).limit(1))
            record(s, actor="anonymous", action="auth.signin_failed", env_id=env_id, object_type="user",
                   object_id=user_id, detail={"email": email.strip()[:320], "client": client, "reason": reason})
    except Exception:  # a failure to audit never turns a refused sign-in into a 500
        log.exception("could not record a failed sign-in")


def _rehash_if_needed(core: Core, user_id: str, stored: str | None, password: str) -> None:
    if stored is None or not _hasher.check_needs_rehash(stored):
        return
    with core.db.transaction() as s:
        user = s.get(User, user_id)
        if user is not None and user.password_hash == stored:
            user.password_hash = _hasher.hash(password)
