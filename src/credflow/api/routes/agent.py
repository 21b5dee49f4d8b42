"""The machine agent's endpoints: register, heartbeat, claim a job (long poll), report its result (and, in the same
request, claim the next one)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from credflow.api import wakeup
from credflow.api.deps import ActorDep, CoreDep, client_address
from credflow.api.errors import problem_responses
from credflow.api.machine_schemas import Heartbeat, JobResult, MachineRegister
from credflow.api.models import HeartbeatAnswer, Job, MachineRegistered, RunSummary
from credflow.services.access import failed_auth
from credflow.services.automation import dispatch, machines

router = APIRouter(prefix="/machines", tags=["machine agent"])
# The /machines/me operations take a machine token: 401 without a valid one, 403 with a user's.
MACHINE = problem_responses(400, 401, 403, 422)


@router.post("/register", status_code=201, response_model=MachineRegistered,
             responses=problem_responses(400, 401, 409, 422))
def register(request: Request, body: MachineRegister, core: CoreDep) -> dict[str, Any]:
    return failed_auth.attempt(
        core, client_address(request), body.registration_token,
        lambda: machines.register_machine(core, body.registration_token, body.name, body.public_key),
        reason="invalid_registration_token", path=request.url.path)


@router.post("/me/heartbeat", response_model=HeartbeatAnswer, responses=MACHINE)
def heartbeat(core: CoreDep, actor: ActorDep, body: Heartbeat | None = None) -> dict[str, Any]:
    return dispatch.heartbeat(core, actor, body.running if body else None)


@router.post("/me/jobs/claim", response_model=Job, response_description="a job, its credential sealed to the machine",
             responses={204: {"description": "no job for this machine (or it holds one)"},
                        **problem_responses(401, 403, 422)})
async def claim(request: Request, core: CoreDep, actor: ActorDep,
                wait: float = Query(0, ge=0, le=120, description="seconds to wait for a job")) -> Response:
    job = await wakeup.claim(request, core, actor, wait)
    return JSONResponse(job) if job is not None else Response(status_code=204)


@router.post("/me/jobs/{run_id}/result", response_model=RunSummary,
             response_description="the run with its result (without next); with next, the next job as a claim's",
             responses={204: {"description": "with next: the result is stored and no job came for this machine"},
                        **problem_responses(400, 401, 403, 404, 409, 413, 422)})
async def result(request: Request, run_id: str, body: JobResult, core: CoreDep, actor: ActorDep,
                 next_wait: float | None = Query(None, alias="next", ge=0, le=120, description=(
                     "store the result, then answer like a claim waiting up to this many seconds: 200 with the "
                     "next job or 204; a result sent again after a lost answer is stored once and brings the same "
                     "job again"))) -> Any:
    if next_wait is None:
        return await run_in_threadpool(dispatch.finish, core, actor, run_id, body.exit_code, body.log)
    job = await wakeup.finish_and_claim(request, core, actor, run_id, body.exit_code, body.log, next_wait)
    return JSONResponse(job) if job is not None else Response(status_code=204)
