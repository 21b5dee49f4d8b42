"""Runs with their status and log, started from a desktop flow and a connection; the desktop flows they run."""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError, RuleViolation
from credflow.services.automation import connections, desktop_flows, machines, runs
from credflow.services.automation.run_state import ACTIVE
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.render import EnvPage, form_text, load_env, page_router, render, see_other

router = page_router()


def _names(request: Request, user: WebUser, e: EnvPage) -> dict[str, dict[str, str]]:
    core = core_of(request)
    return {"flows": {f["id"]: f["name"] for f in desktop_flows.list_desktop_flows(core, user.actor, e.id)},
            "connections": {c["id"]: c["name"] for c in connections.list_connections(core, user.actor, e.id)},
            "machines": {m["id"]: m["name"] for m in machines.list_machines(core, user.actor, e.id)}}


def _page(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
          values: dict[str, str] | None = None) -> Response:
    core = core_of(request)
    found = sorted(runs.list_runs(core, user.actor, e.id), key=lambda r: r["queued_at"] or "", reverse=True)
    flows = desktop_flows.list_desktop_flows(core, user.actor, e.id)
    conns = connections.list_connections(core, user.actor, e.id)
    return render(request, "runs/list.html", user=user, env=e, runs=found, flows=flows, connections=conns,
                  names=_names(request, user, e), error=error,
                  values=values or {"desktop_flow": "", "connection": "", "name": "", "command": ""})


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
    return see_other(f"{e.base}/runs/{run['id']}?done=queued")


def _detail(request: Request, user: WebUser, e: EnvPage, run_id: str, error: DomainError | None = None
            ) -> Response:
    run: dict[str, Any] = runs.get_run(core_of(request), user.actor, e.id, run_id)
    return render(request, "runs/detail.html", user=user, env=e, run=run, active=run["status"] in ACTIVE,
                  names=_names(request, user, e), error=error)


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


@router.post("/env/{env}/desktop-flows/new")
def create_desktop_flow(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {"name": form_text(form, "name"), "command": form_text(form, "command")}
    try:
        try:
            command = shlex.split(values["command"])
        except ValueError:
            raise RuleViolation("the command line has an unclosed quote", code="invalid_command") from None
        desktop_flows.create_desktop_flow(core_of(request), user.actor, e.id, values["name"], command)
    except DomainError as exc:
        return _page(request, user, e, exc, values)
    return see_other(f"{e.base}/runs?done=created")
