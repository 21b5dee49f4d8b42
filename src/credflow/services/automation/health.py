"""Credential health: what needs a person's attention in an environment, worst first.

Each finding is ``{id, severity, kind, credential?, variable?, connection?, detail, since}``; ``id`` is stable
while the finding holds (notification hooks compare them). The kinds, by severity:

- critical: ``expired`` (the version a credential's password serves is past its expiry), ``unreadable`` (a
  connection is ``secret_unreadable``), ``verification_failed`` (a credential's last verification failed);
- warning: ``expires_soon`` (within ``CREDFLOW_EXPIRY_WARNING_DAYS``), ``stale`` (the vault fails and the last
  good version serves), ``not_rotated`` (the password is older than the credential's ``max_age_days``),
  ``lease_contention`` (runs waited for a credential's lease in the last day);
- info: ``unused`` (no run with the credential in 90 days).

A caller sees the findings of the credentials and connections it may list; system administrators see all. Each
kind is one grouped query; nothing here reads a secret value, and no finding carries one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from credflow.domain.errors import RuleViolation
from credflow.domain.statuses import ConnectionStatus
from credflow.persistence.tables import (
    CachedSecret,
    Connection,
    Credential,
    EnvironmentVariable,
    Run,
    SecretHead,
    utcnow,
)
from credflow.services import views
from credflow.services.access import authz
from credflow.services.core import Actor, Core
from credflow.services.secrets.cache import HARD_ERRORS

SEVERITIES = ("critical", "warning", "info")  # worst first
RANK = {s: i for i, s in enumerate(SEVERITIES)}
UNUSED_DAYS = 90
CONTENTION_HOURS = 24


def severity_named(value: str) -> str:
    key = value.strip().lower() if isinstance(value, str) else ""
    if key not in RANK:
        raise RuleViolation(f"a severity is one of {', '.join(SEVERITIES)}", code="unknown_severity",
                            allowed=list(SEVERITIES))
    return key


@dataclass(frozen=True)
class Scope:
    """Which credentials and connections a caller's findings cover: all (``admin``), or those it may list."""

    credentials: ColumnElement[bool]
    connections: ColumnElement[bool]


def _scope(s: Session, actor: Actor | None, role: Any) -> Scope:
    if actor is None:
        return Scope(true(), true())
    conns = true() if authz.env_allows(role, "connection.admin") else Connection.owner_id == actor.id
    return Scope(authz.visible_credentials_clause(s, actor, role), conns)


def _finding(severity: str, kind: str, detail: str, since: datetime | None, *, credential: Credential | None = None,
             variable: str | None = None, connection: Connection | None = None,
             expires_at: datetime | None = None) -> dict[str, Any]:
    key = hashlib.sha256("\x1f".join((kind, credential.id if credential else "", variable or "",
                                      connection.id if connection else "")).encode()).hexdigest()[:32]
    out: dict[str, Any] = {"id": key, "severity": severity, "kind": kind, "detail": detail, "since": views.ts(since)}
    if credential is not None:
        out["credential"], out["credential_name"] = credential.id, credential.name
    if variable is not None:
        out["variable"] = variable
    if connection is not None:
        out["connection"], out["connection_name"] = connection.id, connection.name
    if expires_at is not None:
        out["expires_at"] = views.ts(expires_at)
    return out


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _served_versions(s: Session, env_id: str, scope: Scope) -> list[Any]:
    """For each credential in scope: its password variable, the version it serves (as
    ``connection_state.version_of`` says: pinned, else with a verification the last verified one, else the head's)
    and what the cache knows of that version."""
    head = SecretHead
    following = case((Credential.verification_connection_id.is_not(None), Credential.verified_version),
                     else_=head.current_version)
    version = func.coalesce(EnvironmentVariable.secret_version, following)
    q = (select(Credential, EnvironmentVariable.id, EnvironmentVariable.schema_name, EnvironmentVariable.secret_name,
                version, CachedSecret.expires_at, CachedSecret.version_created_at, CachedSecret.fetched_at,
                head.error_code, head.error_since)
         .join(EnvironmentVariable, EnvironmentVariable.id == Credential.password_variable_id)
         .outerjoin(head, and_(head.store_id == EnvironmentVariable.store_id,
                               head.name == EnvironmentVariable.secret_name))
         .outerjoin(CachedSecret, and_(CachedSecret.store_id == EnvironmentVariable.store_id,
                                       CachedSecret.name == EnvironmentVariable.secret_name,
                                       CachedSecret.version == version))
         .where(Credential.env_id == env_id, scope.credentials))
    return list(s.execute(q).all())


def _secret_findings(core: Core, s: Session, env_id: str, scope: Scope, now: datetime) -> list[dict[str, Any]]:
    warn = timedelta(days=core.settings.expiry_warning_days)
    out: list[dict[str, Any]] = []
    for cred, var_id, var_name, secret_name, version, expires, created, fetched, error, error_since in \
            _served_versions(s, env_id, scope):
        what = f"the password ({var_name}: secret {secret_name!r}, version {version})"
        if expires is not None and expires <= now:
            out.append(_finding("critical", "expired", f"{what} expired at {_when(expires)}", expires,
                                credential=cred, variable=var_id, expires_at=expires))
        elif expires is not None and expires - warn <= now:
            days = max(0, (expires - now).days)
            out.append(_finding("warning", "expires_soon", f"{what} expires at {_when(expires)}, in {days} day(s)",
                                expires - warn, credential=cred, variable=var_id, expires_at=expires))
        if error is not None and error not in HARD_ERRORS:
            out.append(_finding("warning", "stale", f"the vault fails for {what} ({error}); the last good version "
                                f"serves until the stale-if-error bound", error_since, credential=cred,
                                variable=var_id))
        born = created or fetched
        if cred.max_age_days and born is not None and born + timedelta(days=cred.max_age_days) <= now:
            out.append(_finding("warning", "not_rotated", f"{what} was made {(now - born).days} day(s) ago, past the "
                                f"credential's max_age_days of {cred.max_age_days}",
                                born + timedelta(days=cred.max_age_days), credential=cred, variable=var_id))
    return out


def _unreadable(s: Session, env_id: str, scope: Scope) -> list[dict[str, Any]]:
    q = (select(Connection, Credential).outerjoin(Credential, Credential.id == Connection.credential_id)
         .where(Connection.env_id == env_id, Connection.status == ConnectionStatus.SECRET_UNREADABLE,
                scope.connections))
    return [_finding("critical", "unreadable", f"connection {conn.name!r} cannot read its secret: its runs cannot "
                     "start until the vault has it again", conn.updated_at, credential=cred, connection=conn)
            for conn, cred in s.execute(q).all()]


def _verification_failed(s: Session, env_id: str, scope: Scope) -> list[dict[str, Any]]:
    q = select(Credential).where(Credential.env_id == env_id, scope.credentials,
                                 Credential.verification_status == "failed")
    return [_finding("critical", "verification_failed", f"the last verification of credential {c.name!r} failed: "
                     f"{c.verification_detail or 'no detail'}", c.verification_checked_at or c.updated_at,
                     credential=c)
            for c in s.scalars(q).all()]


def _unused(s: Session, env_id: str, scope: Scope, now: datetime) -> list[dict[str, Any]]:
    cutoff = now - timedelta(days=UNUSED_DAYS)
    last = (select(Connection.credential_id.label("cid"), func.max(Run.queued_at).label("last"))
            .join(Run, Run.connection_id == Connection.id).where(Connection.env_id == env_id)
            .group_by(Connection.credential_id).subquery())
    q = (select(Credential, last.c.last).outerjoin(last, last.c.cid == Credential.id)
         .where(Credential.env_id == env_id, scope.credentials, Credential.created_at <= cutoff,
                or_(last.c.last.is_(None), last.c.last <= cutoff)))
    return [_finding("info", "unused", f"credential {c.name!r} has had no run in {UNUSED_DAYS} days"
                     + (f" (last on {_when(at)})" if at else " (never used)"), at or c.created_at, credential=c)
            for c, at in s.execute(q).all()]


def _lease_contention(s: Session, env_id: str, scope: Scope, now: datetime) -> list[dict[str, Any]]:
    waited = Run.lease_waited_since
    q = (select(Credential, func.count(Run.id), func.min(waited))
         .join(Connection, Connection.credential_id == Credential.id).join(Run, Run.connection_id == Connection.id)
         .where(Credential.env_id == env_id, scope.credentials, waited.is_not(None),
                waited >= now - timedelta(hours=CONTENTION_HOURS))
         .group_by(Credential.id))
    return [_finding("warning", "lease_contention", f"{n} run(s) of credential {c.name!r} waited for a free lease in "
                     f"the last {CONTENTION_HOURS} hours: consider raising max_concurrent_runs", first, credential=c)
            for c, n, first in s.execute(q).all()]


def compute(core: Core, s: Session, env_id: str, actor: Actor | None = None, role: Any = None,
            now: datetime | None = None) -> list[dict[str, Any]]:
    """The findings of the environment, worst first; ``actor`` None: all of them (what hooks are told)."""
    now = now or utcnow()
    scope = _scope(s, actor, role)
    found = [*_secret_findings(core, s, env_id, scope, now), *_unreadable(s, env_id, scope),
             *_verification_failed(s, env_id, scope), *_unused(s, env_id, scope, now),
             *_lease_contention(s, env_id, scope, now)]
    found.sort(key=lambda f: (RANK[f["severity"]], f["since"] or "", f["kind"], f["id"]))
    return found


def findings(core: Core, actor: Actor, env_id: str) -> dict[str, Any]:
    """``GET /environments/{env}/health``: the caller's findings, worst first, and how many of each severity."""
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        items = compute(core, s, env.id, actor, role)
    counts = {sev: sum(1 for f in items if f["severity"] == sev) for sev in SEVERITIES}
    return {"items": items, "counts": counts}


def attention(core: Core, actor: Actor, env_id: str) -> dict[str, int]:
    """How many findings the caller sees, by severity (the navigation's badge, the landing page after sign-in)."""
    counts: dict[str, int] = findings(core, actor, env_id)["counts"]
    return counts
