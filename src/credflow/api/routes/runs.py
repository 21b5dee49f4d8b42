from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.machine_schemas import RunCreate
from credflow.api.models import Page, RunPublic, RunSummary
from credflow.api.paging import Limit
from credflow.services.automation import runs

router = APIRouter(prefix="/environments/{env}/runs", tags=["runs"], responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=RunPublic, responses=problem_responses(400, 409))
def create_run(env: str, body: RunCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return runs.create_run(core, actor, env, body.desktop_flow, body.connection, body.timeout_seconds)


@router.get("", response_model=Page[RunSummary], responses=problem_responses(400))
def list_runs(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None,
              status: str | None = Query(None, description="queued, running, succeeded, failed or cancelled."),
              connection: str | None = Query(None, description="A connection's id."),
              desktop_flow: str | None = Query(None, description="A desktop flow's id."),
              cloud_flow: str | None = Query(None, description="A cloud flow's id."),
              machine: str | None = Query(None, description="The id of the machine that claimed the run."),
              since: datetime | None = Query(None, description="RFC 3339; runs queued at or after it."),
              until: datetime | None = Query(None, description="RFC 3339; runs queued before it."),
              ) -> dict[str, Any]:
    return runs.list_runs(core, actor, env, status=status, connection=connection, desktop_flow=desktop_flow,
                          cloud_flow=cloud_flow, machine=machine, since=since, until=until, limit=limit,
                          cursor=cursor)


@router.get("/{run_id}", response_model=RunPublic)
def get_run(env: str, run_id: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return runs.get_run(core, actor, env, run_id)


@router.post("/{run_id}/cancel", response_model=RunPublic, responses=problem_responses(409))
def cancel_run(env: str, run_id: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return runs.cancel_run(core, actor, env, run_id)
