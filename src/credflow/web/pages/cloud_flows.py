"""Cloud flows with a Run button, and (on their own page) the connection references their actions go through."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError
from credflow.services.automation import cloud_flows, connections, desktop_flows
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.render import (
    OPTIONS,
    EnvPage,
    choices,
    form_text,
    list_view,
    load_env,
    page_router,
    paged,
    render,
    see_other,
)

router = page_router()
FIELDS = ("name", "trigger", "cron", "desktop_flow", "connection_reference")
SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("next_fire_at", "Next scheduled run"),
         ("-created", "Newest first"), ("created", "Oldest first")]
REF_SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("-created", "Newest first"),
             ("created", "Oldest first")]


def _page(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
          values: dict[str, str] | None = None, queued: list[dict[str, Any]] | None = None) -> Response:
    core = core_of(request)
    listing, view = list_view(request, SORTS)
    found = cloud_flows.page_cloud_flows(core, user.actor, e.id, listing)
    refs = choices(cloud_flows.list_references(core, user.actor, e.id, limit=OPTIONS))
    desktop = choices(desktop_flows.list_desktop_flows(core, user.actor, e.id, limit=OPTIONS))
    return render(request, "flows/list.html", user=user, env=e, flows=found["items"], view=paged(view, found),
                  references=refs, desktop=desktop, error=error, queued=queued or [],
                  values=values or {**dict.fromkeys(FIELDS, ""), "trigger": "manual"},
                  desktop_names={f["id"]: f["name"] for f in desktop})


@router.get("/env/{env}/cloud-flows")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _page(request, user, load_env(request, user, env))


@router.post("/env/{env}/cloud-flows/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {k: form_text(form, k) for k in FIELDS}
    trigger: dict[str, Any] = {"type": "manual"}
    if values["trigger"] == "schedule":
        trigger = {"type": "schedule", "cron": values["cron"]}
    actions = [{"type": "run_desktop_flow", "desktop_flow": values["desktop_flow"],
                "connection_reference": values["connection_reference"]}]
    try:
        cloud_flows.create_cloud_flow(core_of(request), user.actor, e.id, values["name"], trigger, actions)
    except DomainError as exc:
        return _page(request, user, e, exc, values)
    return see_other(f"{e.base}/cloud-flows?done=created")


@router.post("/env/{env}/cloud-flows/{flow}/run")
def run(request: Request, env: str, flow: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        made = cloud_flows.run_cloud_flow(core_of(request), user.actor, e.id, flow)
    except DomainError as exc:
        return _page(request, user, e, exc)
    return _page(request, user, e, queued=made["runs"])


# --- connection references -------------------------------------------------------------------------------------
def _references(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
                values: dict[str, str] | None = None) -> Response:
    core = core_of(request)
    listing, view = list_view(request, REF_SORTS)
    found = cloud_flows.page_references(core, user.actor, e.id, listing)
    conns = choices(connections.list_connections(core, user.actor, e.id, limit=OPTIONS))
    return render(request, "flows/references.html", user=user, env=e, references=found["items"],
                  view=paged(view, found), connections=conns, error=error, section="/cloud-flows",
                  values=values or {"ref_name": "", "ref_connection": ""})


@router.get("/env/{env}/connection-references")
def references_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _references(request, user, load_env(request, user, env))


@router.post("/env/{env}/connection-references/new")
def create_reference(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {"ref_name": form_text(form, "ref_name"), "ref_connection": form_text(form, "ref_connection")}
    try:
        cloud_flows.create_reference(core_of(request), user.actor, e.id, values["ref_name"],
                                     values["ref_connection"] or None)
    except DomainError as exc:
        return _references(request, user, e, exc, values)
    return see_other(f"{e.base}/connection-references?done=created")


@router.post("/env/{env}/connection-references/{ref}/bind")
def bind_reference(request: Request, env: str, ref: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        cloud_flows.bind_reference(core_of(request), user.actor, e.id, ref, form_text(form, "connection") or None)
    except DomainError as exc:
        return _references(request, user, e, exc)
    return see_other(f"{e.base}/connection-references?done=saved")
