from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import AuditRecordPublic, Page
from credflow.api.paging import Limit
from credflow.services.access import audit_log

router = APIRouter(prefix="/environments/{env}/audit", tags=["audit"])


@router.get("", response_model=Page[AuditRecordPublic], responses=problem_responses(400, 401, 403, 404, 422))
def list_audit(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None,
               object: str | None = Query(None, description="An object id."),
               who: str | None = Query(None, alias="actor", description="user:ID, machine:ID, an id or an email."),
               since: datetime | None = Query(None, description="RFC 3339; records at or after it."),
               until: datetime | None = Query(None, description="RFC 3339; records before it."),
               action: str | None = Query(None, description="An action, or a prefix such as credential."),
               ) -> dict[str, Any]:
    return audit_log.list_records(core, actor, env, object_id=object, who=who, since=since, until=until,
                                  action=action, limit=limit, cursor=cursor)
