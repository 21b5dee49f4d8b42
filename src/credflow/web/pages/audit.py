"""The audit trail of an environment, for its system administrators: who did what to which object, and when;
newest first, a page at a time, with names where the records hold ids."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import Malformed
from credflow.services.access import audit_log
from credflow.web.auth import CurrentUser, core_of
from credflow.web.render import keyset_view, load_env, page_router, render, when

router = page_router()
PAGE = 50
SORTS = [("newest", "Newest first"), ("oldest", "Oldest first")]
TYPE_LABELS = {"cloud_flow": "Cloud flow", "connection": "Connection", "connection_reference": "Connection reference",
               "credential": "Credential", "desktop_flow": "Desktop flow", "environment": "Environment",
               "environment_variable": "Environment variable", "event_key": "Event key", "machine": "Machine",
               "machine_group": "Machine group", "machine_registration": "Machine registration", "run": "Run",
               "secret": "Secret", "secret_store": "Secret store", "solution": "Solution", "team": "Team",
               "user": "Person"}
SYSTEM_ACTORS = {"system:scheduler": "credflow's scheduler", "system:rotation": "credflow's rotation worker",
                 "anonymous": "someone not signed in"}
_NAME_KEYS = ("name", "schema_name", "unique_name", "email")
_UNNAMED = ("machine_registration", "event_key")  # objects that have no name to show
_ID = re.compile(r"^[0-9a-f]{32}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def actor_text(record: dict[str, Any]) -> str:
    kind, _, _ = record["actor"].partition(":")
    if record.get("actor_name"):
        return record["actor_name"] if kind == "user" else f"machine {record['actor_name']}"
    if record["actor"] in SYSTEM_ACTORS:
        return SYSTEM_ACTORS[record["actor"]]
    return {"user": "a removed person", "machine": "a deleted machine", "event_key": "a vault event (event key)",
            "system": "credflow"}.get(kind, record["actor"])


def object_text(record: dict[str, Any]) -> str:
    """What the record is about: its kind and name (a deleted object by the name its records kept)."""
    kind = record.get("object_type")
    if not kind:
        return ""
    detail = record.get("detail") or {}
    label = TYPE_LABELS.get(kind, kind.replace("_", " ").capitalize())
    if kind == "secret":
        name = detail.get("name")
        store = record.get("object_name")
        return f"Secret {name}" + (f" in store {store}" if store else "") if name else label
    name = record.get("object_name") or next((detail[k] for k in _NAME_KEYS if isinstance(detail.get(k), str)), None)
    if kind == "run":
        return (name[0].upper() + name[1:]) if name else "A run"
    if kind in _UNNAMED:
        return label
    if name:
        return f"{label} {name}"
    return f"{label} (deleted)" if record.get("object_id") else label


def _value(value: Any, names: dict[str, str]) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        if value in names:
            return names[value]
        if _ID.match(value):
            return "(no longer there)"
        return when(value) if _TIMESTAMP.match(value) else value
    if isinstance(value, list):
        return ", ".join(_value(v, names) for v in value) if value else "none"
    if isinstance(value, dict):
        if set(value) == {"from", "to"}:
            return f"{_value(value['from'], names)} → {_value(value['to'], names)}"
        return "; ".join(f"{_label(k)}: {_value(v, names)}" for k, v in value.items())
    return str(value)


def _label(key: str) -> str:
    text = key.replace("_", " ")
    return text[0].upper() + text[1:] if text else text


def readable(detail: dict[str, Any] | None, names: dict[str, str]) -> list[tuple[str, str]]:
    """A record's detail as label and text, ids as the names the service found for them."""
    return [(_label(k), "a one-time registration token" if k == "registration" else _value(v, names))
            for k, v in (detail or {}).items()]


@router.get("/env/{env}/audit")
def list_page(request: Request, env: str, user: CurrentUser, object: str = "", actor: str = "",
              action: str = "", since: str = "", sort: str = "newest", after: str = "", before: str = "") -> Response:
    e = load_env(request, user, env)
    when = None
    if since:
        try:
            when = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Malformed("since is a date and time like 2024-01-31 12:00 (UTC)", code="malformed_since") from None
    found = audit_log.page_records(core_of(request), user.actor, e.id, object_ref=object.strip() or None,
                                   who=actor.strip() or None, since=when, action=action.strip() or None,
                                   newest_first=sort != "oldest", after=after or None, before=before or None,
                                   limit=PAGE)
    filters = {"object": object, "actor": actor, "action": action, "since": since}
    records = [{**r, "actor_text": actor_text(r), "object_text": object_text(r),
                "details": readable(r["detail"], r["names"])} for r in found["items"]]
    view = keyset_view(request, SORTS, found, {k: v for k, v in filters.items() if v})
    return render(request, "audit/list.html", user=user, env=e, records=records, filters=filters, view=view)
