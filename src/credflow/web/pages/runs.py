"""Runs with their status and log, started from a desktop flow and a connection and followed live until they end;
the desktop flows they run, on their own page."""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError, RuleViolation
from credflow.domain.statuses import RunStatus
from credflow.services.automation import connections, desktop_flows, machines, runs
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.render import (
    OPTIONS,
    EnvPage,
    choices,
    form_text,
    keyset_view,
    list_view,
    load_env,
    page_router,
    paged,
    render,
    see_other,
)

router = page_router()
ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
RUN_SORTS = [("newest", "Newest first"), ("oldest", "Oldest first")]
FLOW_SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("-created", "Newest first"),
              ("created", "Oldest first")]
STATUS_LABELS = {"queued": "Queued", "running": "Running", "succeeded": "Succeeded", "failed": "Failed",
                 "cancelled": "Cancelled"}
_FAILED_LINE = "[credflow] the run failed: "


def why(run: dict[str, Any]) -> str:
    """Why a run ended the way it did, or why a queued run waits for a lease, in a sentence (else empty)."""
    if run.get("waiting_for") == "credential_lease":
        return "Waiting for credential lease"
    if run["status"] in ACTIVE or run["status"] == RunStatus.SUCCEEDED.value:
        return ""
    detail = run.get("reason_detail") or ""
    reason = (run.get("reason") or "").replace("_", " ")
    if detail:
        return detail[0].upper() + detail[1:]
    if reason:
        return reason[0].upper() + reason[1:]
    if run.get("exit_code") not in (None, 0):
        return f"The flow exited with code {run['exit_code']}"
    for line in reversed((run.get("log") or "").splitlines()):  # runs that ended before reasons were kept
        if line.startswith(_FAILED_LINE):
            text = line.removeprefix(_FAILED_LINE).replace("_", " ")
            return text[0].upper() + text[1:] if text else ""
    return ""


def _statuses() -> list[tuple[str, str]]:
    return [(s.value, STATUS_LABELS.get(s.value, s.value.capitalize())) for s in RunStatus]


def _page(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
          values: dict[str, str] | None = None) -> Response:
    core = core_of(request)
    params = request.query_params
    status = params.get("status", "")
    status = status if status in {s.value for s in RunStatus} else ""
    machine = machines.get_machine(core, user.actor, e.id, params["machine"]) if params.get("machine") else None
    found = runs.page_runs(core, user.actor, e.id, search=params.get("q", ""), status=status or None,
                           newest_first=params.get("sort") != "oldest", after=params.get("after") or None,
                           before=params.get("before") or None, limit=50, machine=machine["id"] if machine else None)
    flows = choices(desktop_flows.list_desktop_flows(core, user.actor, e.id, limit=OPTIONS))
    conns = choices(connections.list_connections(core, user.actor, e.id, limit=OPTIONS))
    items = [{**r, "why": why(r)} for r in found["items"]]
    return render(request, "runs/list.html", user=user, env=e, runs=items, flows=flows, connections=conns,
                  view=keyset_view(request, RUN_SORTS, found,
                                   {"status": status, "machine": machine["id"] if machine else ""}),
                  status_filter=status, machine=machine,
                  statuses=_statuses(), live=any(r["status"] in ACTIVE for r in items), error=error,
                  values=values or {"desktop_flow": "", "connection": ""})


@router.get("/env/{env}/runs")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _page(request, user, load_env(request, user, env))


@router.post("/env/{env}/runs/new")
def start(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {k: form_text(form, k) for k in ("desktop_flow", "connection")}
    try:
        run = runs.create_run(core_of(request), user.actor, e.id, values["desktop_flow"], values["connection"])
    except DomainError as exc:
        return _page(request, user, e, exc, values)
    return see_other(f"{e.base}/runs/{run['id']}")  # the page says "queued" itself, and follows the run


def _detail(request: Request, user: WebUser, e: EnvPage, run_id: str, error: DomainError | None = None
            ) -> Response:
    run: dict[str, Any] = runs.describe_run(core_of(request), user.actor, e.id, run_id)
    return render(request, "runs/detail.html", user=user, env=e, run=run, active=run["status"] in ACTIVE,
                  why=why(run), error=error, section="/runs")


@router.get("/env/{env}/runs/{run_id}")
def detail(request: Request, env: str, run_id: str, user: CurrentUser) -> Response:
    return _detail(request, user, load_env(request, user, env), run_id)


@router.post("/env/{env}/runs/{run_id}/cancel")
def cancel(request: Request, env: str, run_id: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        runs.cancel_run(core_of(request), user.actor, e.id, run_id)
    except DomainError as exc:
        return _detail(request, user, e, run_id, exc)
    return see_other(f"{e.base}/runs/{run_id}")


# --- desktop flows ---------------------------------------------------------------------------------------------
def _flows(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
           values: dict[str, str] | None = None) -> Response:
    listing, view = list_view(request, FLOW_SORTS)
    found = desktop_flows.page_desktop_flows(core_of(request), user.actor, e.id, listing)
    return render(request, "runs/flows.html", user=user, env=e, flows=found["items"], view=paged(view, found),
                  error=error, values=values or {"name": "", "command": ""}, section="/runs",
                  edit_flows=e.can("desktop_flow.create"))


@router.get("/env/{env}/desktop-flows")
def flows_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _flows(request, user, load_env(request, user, env))


def command_of(text: str) -> list[str]:
    """The argv of a command line as a shell would split it."""
    try:
        return shlex.split(text)
    except ValueError:
        raise RuleViolation("the command line has an unclosed quote", code="invalid_command") from None


@router.post("/env/{env}/desktop-flows/new")
def create_desktop_flow(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {"name": form_text(form, "name"), "command": form_text(form, "command")}
    try:
        desktop_flows.create_desktop_flow(core_of(request), user.actor, e.id, values["name"],
                                          command_of(values["command"]))
    except DomainError as exc:
        return _flows(request, user, e, exc, values)
    return see_other(f"{e.base}/desktop-flows?done=created")


def _edit_flow(request: Request, user: WebUser, e: EnvPage, flow: str, values: dict[str, str] | None = None,
               error: DomainError | None = None) -> Response:
    got = desktop_flows.get_desktop_flow(core_of(request), user.actor, e.id, flow)
    return render(request, "runs/flow_edit.html", user=user, env=e, flow=got, error=error, section="/runs",
                  values=values or {"name": got["name"], "command": shlex.join(got["command"])})


@router.get("/env/{env}/desktop-flows/{flow}/edit")
def edit_flow_page(request: Request, env: str, flow: str, user: CurrentUser) -> Response:
    return _edit_flow(request, user, load_env(request, user, env), flow)


@router.post("/env/{env}/desktop-flows/{flow}/edit")
def edit_flow(request: Request, env: str, flow: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {"name": form_text(form, "name"), "command": form_text(form, "command")}
    try:
        desktop_flows.update_desktop_flow(core_of(request), user.actor, e.id, flow, name=values["name"],
                                          command=command_of(values["command"]))
    except DomainError as exc:
        return _edit_flow(request, user, e, flow, values, exc)
    return see_other(f"{e.base}/desktop-flows?done=saved")
