"""Notification hooks: URLs told when a health finding appears or clears (system administrators of the
environment make, list and delete them).

A hook's URL often is a secret itself (a Slack or Teams incoming webhook), so it is sealed with the signing secret
under the barrier; views show it cut to its host and first path segment. The signing secret is shown once, when
the hook is made. Delivery is ``credflow.services.automation.hook_delivery``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import NotFound, RuleViolation
from credflow.persistence.tables import NotificationHook
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.automation.health import SEVERITIES, severity_named
from credflow.services.core import Actor, Core
from credflow.stores.egress import LINK_LOCAL_RANGES, literal_link_local

MAX_URL = 2000


def _aad(hook_id: str) -> str:
    return f"notification-hook:{hook_id}"


def shown_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/XYZ`` -> ``https://hooks.slack.com/services/…``: enough to tell
    hooks apart, not enough to post to one."""
    parts = urlsplit(url)
    segments = [p for p in parts.path.split("/") if p]
    path = f"/{segments[0]}" if segments else ""
    more = "/…" if len(segments) > 1 or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{path}{more}"


def check_url(url: str) -> str:
    url = url.strip() if isinstance(url, str) else ""
    bad = RuleViolation(f"a hook's url is an http or https URL of at most {MAX_URL} characters", code="invalid_url",
                        field="url")
    if len(url) > MAX_URL or not url.isprintable():
        raise bad
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not host:
        raise bad
    if parts.username or parts.password:
        raise RuleViolation("a hook's url may not carry a user name or password", code="invalid_url", field="url")
    if literal_link_local(url):
        raise RuleViolation(f"the hook's url is a link-local address ({LINK_LOCAL_RANGES}), where cloud metadata "
                            "services answer; credflow never connects to one", code="link_local_address", field="url")
    return url


def view(row: NotificationHook) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "min_severity": row.min_severity, "environment": row.env_id,
            "created_by": row.created_by, "created_at": views.ts(row.created_at)}


def opened(core: Core, s: Session, row: NotificationHook) -> tuple[str, str]:
    """(url, signing secret) of a hook."""
    kept = json.loads(core.barrier.open(s, row.sealed_secret, _aad(row.id)))
    return kept["url"], kept["secret"]


def create_hook(core: Core, actor: Actor, env_id: str, url: str, min_severity: str) -> dict[str, Any]:
    url = check_url(url)
    severity = severity_named(min_severity)
    signing = secrets.token_urlsafe(32)
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "environment.admin")
        row = NotificationHook(env_id=env.id, url=shown_url(url), min_severity=severity, sealed_secret="",
                               created_by=actor.id)
        s.add(row)
        s.flush()
        row.sealed_secret = core.barrier.seal(s, json.dumps({"url": url, "secret": signing}), _aad(row.id))
        record(s, actor=actor.label, action="notification_hook.create", env_id=env.id,
               object_type="notification_hook", object_id=row.id,
               detail={"url": row.url, "min_severity": severity})
        return {**view(row), "secret": signing}


def list_hooks(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
               ) -> dict[str, Any]:
    """One page of the environment's hooks in the order they were made."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "environment.admin")
        q = select(NotificationHook).where(NotificationHook.env_id == env.id)
        return lookup.seek(s, q, NotificationHook.id, limit=limit, cursor=cursor, view=view)


def delete_hook(core: Core, actor: Actor, env_id: str, hook_id: str) -> None:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "environment.admin")
        row = s.get(NotificationHook, hook_id)
        if row is None or row.env_id != env.id:
            raise NotFound(f"notification hook {hook_id!r} not found", code="hook_not_found")
        record(s, actor=actor.label, action="notification_hook.delete", env_id=env.id,
               object_type="notification_hook", object_id=row.id, detail={"url": row.url})
        s.delete(row)


__all__ = ["SEVERITIES", "check_url", "create_hook", "delete_hook", "list_hooks", "opened", "shown_url", "view"]
