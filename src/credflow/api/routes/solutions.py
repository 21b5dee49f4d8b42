from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import ImportReport, Page, SolutionComponentsAdded, SolutionPublic
from credflow.api.paging import Limit
from credflow.api.schemas import Body
from credflow.domain.errors import Malformed
from credflow.services.catalog import solution_import, solutions
from credflow.solutions.package import MAX_ARCHIVE_BYTES

router = APIRouter(prefix="/environments/{env}/solutions", tags=["solutions"],
                   responses=problem_responses(401, 403, 404, 422))
MAX_SETTINGS_BYTES = 1024 * 1024
_UPLOAD = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the solution zip"},
        "settings": {"type": "string", "format": "binary",
                     "description": "deployment settings JSON for the target environment (optional)"}}}}}}}


class SolutionCreate(Body):
    unique_name: str
    display_name: str
    version: str
    publisher: str | None = None


class SolutionUpdate(Body):
    display_name: str | None = None
    version: str | None = None
    publisher: str | None = None


class ComponentAdd(Body):
    type: str
    id: str
    add_required: bool = True


@router.post("", status_code=201, response_model=SolutionPublic, responses=problem_responses(400, 409))
def create_solution(env: str, body: SolutionCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return solutions.create_solution(core, actor, env, body.unique_name, body.display_name, body.version,
                                     body.publisher)


@router.get("", response_model=Page[SolutionPublic], responses=problem_responses(400))
def list_solutions(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                   ) -> dict[str, Any]:
    return solutions.list_solutions(core, actor, env, limit=limit, cursor=cursor)


async def _field(form: Any, name: str, limit: int) -> bytes | None:
    value = form.get(name)
    if value is None:
        return None
    data = await value.read(limit + 1) if isinstance(value, UploadFile) else str(value).encode()
    if len(data) > limit:
        raise Malformed(f"the field {name} is larger than {limit} bytes", code="zip_too_large")
    return bytes(data)


@router.post("/import", openapi_extra=_UPLOAD, response_model=ImportReport,
             response_description="what was (or, in a dry run, would be) created, updated and left unchanged",
             responses=problem_responses(400, 409))
async def import_solution(env: str, request: Request, core: CoreDep, actor: ActorDep, dry_run: bool = False
                          ) -> dict[str, Any]:
    # The body's size is limited as it arrives (credflow.api.limits: max_import_body_bytes, 413).
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Malformed("send the zip as the multipart form field 'file'", code="missing_file")
    async with request.form(max_files=2, max_fields=2) as form:
        data = await _field(form, "file", MAX_ARCHIVE_BYTES)
        settings = await _field(form, "settings", MAX_SETTINGS_BYTES)
    if not data:
        raise Malformed("send the zip as the multipart form field 'file'", code="missing_file")
    result: dict[str, Any] = await run_in_threadpool(solution_import.import_solution, core, actor, env, data,
                                                     settings, dry_run)
    return result


@router.get("/{name}", response_model=SolutionPublic)
def get_solution(env: str, name: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return solutions.get_solution(core, actor, env, name)


@router.patch("/{name}", response_model=SolutionPublic, responses=problem_responses(400))
def update_solution(env: str, name: str, body: SolutionUpdate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return solutions.update_solution(core, actor, env, name, body.model_dump(exclude_unset=True))


@router.post("/{name}/components", response_model=SolutionComponentsAdded, responses=problem_responses(400))
def add_component(env: str, name: str, body: ComponentAdd, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return solutions.add_component(core, actor, env, name, body.type, body.id, body.add_required)


@router.get("/{name}/export", response_class=Response, responses={200: {
    "description": "the solution zip: a manifest and one document per component, never a secret value",
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    "headers": {"Content-Disposition": {"description": 'attachment; filename="NAME_VERSION.zip"',
                                        "schema": {"type": "string"}}}}})
def export_solution(env: str, name: str, core: CoreDep, actor: ActorDep) -> Response:
    filename, data = solutions.export_solution(core, actor, env, name)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
