"""Desktop flow connections: on a machine or a machine group, with a username and password typed in or, after
"Switch to credentials", with a credential; their status and the secret version the next run receives."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError, RuleViolation
from credflow.services.automation import connections
from credflow.services.catalog import credentials
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.pages.machines import agent_commands, targets
from credflow.web.render import (
    OPTIONS,
    EnvPage,
    choices,
    form_raw,
    form_text,
    list_view,
    load_env,
    page_router,
    paged,
    render,
    see_other,
)

router = page_router()


SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("status", "Status"), ("-created", "Newest first"),
         ("created", "Oldest first")]


@router.get("/env/{env}/connections")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    listing, view = list_view(request, SORTS)
    found = connections.page_connections(core_of(request), user.actor, e.id, listing)
    return render(request, "connections/list.html", user=user, env=e, connections=found["items"],
                  view=paged(view, found), edit_connection=True)


def _form(request: Request, user: WebUser, e: EnvPage, auth: str, values: dict[str, str],
          error: DomainError | None = None, switched: bool = False) -> Response:
    found_machines, groups = targets(request, user, e)
    creds = choices(credentials.list_credentials(core_of(request), user.actor, e.id, limit=OPTIONS))
    return render(request, "connections/new.html", user=user, env=e, auth=auth, values=values,
                  machines=found_machines, groups=groups, credentials=creds, error=error,
                  switched=switched, commands=agent_commands(request), section="/connections")


@router.get("/env/{env}/connections/new")
def new_page(request: Request, env: str, user: CurrentUser, auth: str = "") -> Response:
    e = load_env(request, user, env)
    return _form(request, user, e, "credential" if auth == "credential" else "password",
                 {"name": "", "target": "", "credential": ""}, switched=bool(auth))


def _target(value: str) -> dict[str, str]:
    kind, _, ident = value.partition(":")
    if kind not in ("machine", "machine_group") or not ident:
        raise RuleViolation("select the machine or the machine group", code="invalid_target")
    return {kind: ident}


@router.post("/env/{env}/connections/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    auth = "credential" if form_text(form, "auth") == "credential" else "password"
    values = {k: form_text(form, k) for k in ("name", "target", "credential")}
    try:
        target = _target(values["target"])
        if auth == "credential":
            made = connections.create_connection(core_of(request), user.actor, e.id, values["name"], target,
                                                 values["credential"] or "")
        else:
            made = connections.create_connection(core_of(request), user.actor, e.id, values["name"], target, None,
                                                 form_raw(form, "username"), form_raw(form, "password"))
    except DomainError as exc:
        return _form(request, user, e, auth, values, exc)
    return see_other(f"{e.base}/connections?done=created#conn-{made['id']}")


def _edit_form(request: Request, user: WebUser, e: EnvPage, conn: str, values: dict[str, str] | None = None,
               error: DomainError | None = None) -> Response:
    core = core_of(request)
    got = connections.get_connection(core, user.actor, e.id, conn)
    found_machines, groups = targets(request, user, e)
    creds = choices(credentials.list_credentials(core, user.actor, e.id, limit=OPTIONS))
    target = next((f"{k}:{v}" for k, v in (got["target"] or {}).items()), "")
    current = {"name": got["name"], "target": target, "auth": "credential" if got["credential"] else "password",
               "credential": got["credential"] or ""}
    return render(request, "connections/edit.html", user=user, env=e, conn=got, values=values or current,
                  current=current, machines=found_machines, groups=groups, credentials=creds, error=error,
                  section="/connections")


@router.get("/env/{env}/connections/{conn}/edit")
def edit_page(request: Request, env: str, conn: str, user: CurrentUser) -> Response:
    return _edit_form(request, user, load_env(request, user, env), conn)


@router.post("/env/{env}/connections/{conn}/edit")
def edit(request: Request, env: str, conn: str, user: CurrentUser, form: PostedForm) -> Response:
    """Rename, move to another machine or group, or switch between a credential and a typed login; a typed
    username or password left empty keeps the one the connection has."""
    e = load_env(request, user, env)
    core = core_of(request)
    values = {k: form_text(form, k) for k in ("name", "target", "auth", "credential")}
    try:
        got = connections.get_connection(core, user.actor, e.id, conn)
        changes: dict[str, Any] = {}
        if values["name"] != got["name"]:
            changes["name"] = values["name"]
        if values["target"] != next((f"{k}:{v}" for k, v in (got["target"] or {}).items()), ""):
            changes["target"] = _target(values["target"])
        if values["auth"] == "credential":
            if not values["credential"]:
                raise RuleViolation("select the credential the connection signs in with", code="missing_credential")
            if values["credential"] != got["credential"]:
                changes["credential"] = values["credential"]
        else:
            typed = {k: form_raw(form, k) for k in ("username", "password")}
            changes.update({k: v for k, v in typed.items() if v})
        connections.update_connection(core, user.actor, e.id, got["id"], **changes)
    except DomainError as exc:
        return _edit_form(request, user, e, conn, values, exc)
    return see_other(f"{e.base}/connections?done=saved#conn-{got['id']}")


def _delete_page(request: Request, user: WebUser, e: EnvPage, conn: str, error: DomainError | None = None
                 ) -> Response:
    got = connections.get_connection(core_of(request), user.actor, e.id, conn)
    return render(request, "connections/delete.html", user=user, env=e, conn=got, error=error,
                  section="/connections")


@router.get("/env/{env}/connections/{conn}/delete")
def delete_page(request: Request, env: str, conn: str, user: CurrentUser) -> Response:
    """Ask before deleting."""
    return _delete_page(request, user, load_env(request, user, env), conn)


@router.post("/env/{env}/connections/{conn}/delete")
def delete(request: Request, env: str, conn: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        connections.delete_connection(core_of(request), user.actor, e.id, conn)
    except DomainError as exc:
        return _delete_page(request, user, e, conn, exc)
    return see_other(f"{e.base}/connections?done=deleted")
