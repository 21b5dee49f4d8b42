"""The audit trail of an environment, for its system administrators: who did what to which object, and when."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import Malformed
from credflow.services.access import audit_log, users
from credflow.web.auth import CurrentUser, core_of
from credflow.web.render import load_env, page_router, render

router = page_router()
PAGE = 100


@router.get("/env/{env}/audit")
def list_page(request: Request, env: str, user: CurrentUser, object: str = "", actor: str = "",
              action: str = "", since: str = "", cursor: str = "") -> Response:
    e = load_env(request, user, env)
    when = None
    if since:
        try:
            when = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise Malformed("since is a date and time like 2024-01-31T12:00:00Z", code="malformed_since") from None
    found = audit_log.list_records(core_of(request), user.actor, e.id, object_id=object or None,
                                   who=actor or None, since=when, action=action or None, limit=PAGE,
                                   cursor=cursor or None)
    people = {f"user:{u['id']}": u["email"] for u in users.list_users(core_of(request), user.actor)}
    filters = {"object": object, "actor": actor, "action": action, "since": since}
    return render(request, "audit/list.html", user=user, env=e, records=found["items"],
                  next_cursor=found["next_cursor"], filters=filters, people=people)
