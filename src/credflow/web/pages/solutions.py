"""Solutions: create one, add components, export it as a zip, and import a zip (with its dry-run report first)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from credflow.domain.errors import DomainError, Malformed
from credflow.services.automation import cloud_flows, desktop_flows
from credflow.services.catalog import credentials, solution_import, solutions, variables
from credflow.solutions.package import MAX_ARCHIVE_BYTES
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.render import OPTIONS, EnvPage, form_text, list_view, load_env, page_router, paged, render, see_other

router = page_router()
MAX_SETTINGS_BYTES = 1024 * 1024
TYPE_LABELS = {"environment_variable": "Environment variables", "credential": "Credentials",
               "desktop_flow": "Desktop flows", "connection_reference": "Connection references",
               "cloud_flow": "Cloud flows"}


def _components(request: Request, user: WebUser, e: EnvPage) -> list[tuple[str, list[tuple[str, str]]]]:
    core, actor = core_of(request), user.actor
    found: dict[str, list[dict[str, Any]]] = {
        "environment_variable": [{"id": v["id"], "name": v["schema_name"]}
                                 for v in variables.list_variables(core, actor, e.id, limit=OPTIONS)["items"]],
        "credential": credentials.list_credentials(core, actor, e.id, limit=OPTIONS)["items"],
        "desktop_flow": desktop_flows.list_desktop_flows(core, actor, e.id, limit=OPTIONS)["items"],
        "connection_reference": cloud_flows.list_references(core, actor, e.id, limit=OPTIONS)["items"],
        "cloud_flow": cloud_flows.list_cloud_flows(core, actor, e.id, limit=OPTIONS)["items"]}
    return [(TYPE_LABELS[t], [(f"{t}:{row['id']}", row["name"]) for row in rows]) for t, rows in found.items() if rows]


SORTS = [("name", "Display name, A to Z"), ("-name", "Display name, Z to A"), ("unique_name", "Unique name"),
         ("-created", "Newest first"), ("created", "Oldest first")]


def _page(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
          values: dict[str, str] | None = None, report: dict[str, Any] | None = None) -> Response:
    listing, view = list_view(request, SORTS)
    found = solutions.page_solutions(core_of(request), user.actor, e.id, listing)
    return render(request, "solutions/list.html", user=user, env=e, solutions=found["items"],
                  view=paged(view, found), error=error, report=report,
                  components=_components(request, user, e), type_labels=TYPE_LABELS,
                  values=values or {"unique_name": "", "display_name": "", "version": "1.0.0.0"})


@router.get("/env/{env}/solutions")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _page(request, user, load_env(request, user, env))


@router.post("/env/{env}/solutions/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {k: form_text(form, k) for k in ("unique_name", "display_name", "version")}
    try:
        solutions.create_solution(core_of(request), user.actor, e.id, values["unique_name"],
                                  values["display_name"] or values["unique_name"], values["version"])
    except DomainError as exc:
        return _page(request, user, e, exc, values)
    return see_other(f"{e.base}/solutions?done=created")


@router.post("/env/{env}/solutions/{name}/components")
def add_component(request: Request, env: str, name: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    type_, _, ident = form_text(form, "component").partition(":")
    try:
        solutions.add_component(core_of(request), user.actor, e.id, name, type_, ident)
    except DomainError as exc:
        return _page(request, user, e, exc)
    return see_other(f"{e.base}/solutions?done=saved")


@router.get("/env/{env}/solutions/{name}/export")
def export(request: Request, env: str, name: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    filename, data = solutions.export_solution(core_of(request), user.actor, e.id, name)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def _upload(form: Any, name: str, limit: int) -> bytes | None:
    value = form.get(name)
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = value.file.read(limit + 1)
    if len(data) > limit:
        raise Malformed(f"the file {name} is larger than {limit} bytes", code="zip_too_large")
    return bytes(data)


@router.post("/env/{env}/solutions/import")
def import_(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        data = _upload(form, "file", MAX_ARCHIVE_BYTES)
        if not data:
            raise Malformed("choose the solution zip to import", code="missing_file")
        report = solution_import.import_solution(core_of(request), user.actor, e.id, data,
                                                 _upload(form, "settings", MAX_SETTINGS_BYTES),
                                                 dry_run=form.get("dry_run") == "yes")
    except DomainError as exc:
        return _page(request, user, e, exc)
    return _page(request, user, e, report=report)
