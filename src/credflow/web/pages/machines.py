"""Machines and machine groups: online or offline from heartbeats, a registration token with the agent command
ready to copy, groups of machines."""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError
from credflow.services.automation import machines
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.render import EnvPage, by_name, form_text, load_env, page_router, render, see_other

router = page_router()


def targets(request: Request, user: WebUser, e: EnvPage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The machines and the machine groups of the environment, by name."""
    core = core_of(request)
    return (by_name(machines.list_machines(core, user.actor, e.id)),
            by_name(machines.list_groups(core, user.actor, e.id)))


def _page(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
          registration: dict[str, Any] | None = None, group_values: dict[str, Any] | None = None) -> Response:
    found, groups = targets(request, user, e)
    commands: list[str] = []
    if registration is not None:
        server = str(request.base_url).rstrip("/")
        commands = [f"credflow agent register --server {shlex.quote(server)} --registration-token "
                    f"{shlex.quote(registration['registration_token'])} --name MACHINE-NAME",
                    "credflow agent run"]
    return render(request, "machines/list.html", user=user, env=e, machines=found, groups=groups, error=error,
                  registration=registration, commands=commands, names={m["id"]: m["name"] for m in found},
                  group_names={g["id"]: g["name"] for g in groups},
                  group_values=group_values or {"name": "", "machines": []})


@router.get("/env/{env}/machines")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _page(request, user, load_env(request, user, env))


@router.post("/env/{env}/machines/registrations")
def register(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    """The token is shown in this answer only (never stored in a page one can come back to)."""
    e = load_env(request, user, env)
    try:
        made = machines.create_registration(core_of(request), user.actor, e.id)
    except DomainError as exc:
        return _page(request, user, e, exc)
    return _page(request, user, e, registration=made)


@router.post("/env/{env}/machines/{machine}/delete")
def delete_machine(request: Request, env: str, machine: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        machines.delete_machine(core_of(request), user.actor, e.id, machine)
    except DomainError as exc:
        return _page(request, user, e, exc)
    return see_other(f"{e.base}/machines?done=deleted")


@router.post("/env/{env}/machine-groups/new")
def create_group(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    name, members = form_text(form, "name"), [str(m) for m in form.getlist("machines")]
    values: dict[str, Any] = {"name": name, "machines": members}
    try:
        machines.create_group(core_of(request), user.actor, e.id, name, members)
    except DomainError as exc:
        return _page(request, user, e, exc, group_values=values)
    return see_other(f"{e.base}/machines?done=created")


@router.post("/env/{env}/machine-groups/{group}/delete")
def delete_group(request: Request, env: str, group: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        machines.delete_group(core_of(request), user.actor, e.id, group)
    except DomainError as exc:
        return _page(request, user, e, exc)
    return see_other(f"{e.base}/machines?done=deleted")


@router.post("/env/{env}/machine-groups/{group}/machines")
def add_to_group(request: Request, env: str, group: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    try:
        current = machines.get_group(core, user.actor, e.id, group)["machines"]
        machines.update_group(core, user.actor, e.id, group, None, [*current, form_text(form, "machine")])
    except DomainError as exc:
        return _page(request, user, e, exc)
    return see_other(f"{e.base}/machines?done=machine_added")


@router.post("/env/{env}/machine-groups/{group}/machines/{machine}/remove")
def remove_from_group(request: Request, env: str, group: str, machine: str, user: CurrentUser,
                      form: PostedForm) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    try:
        current = machines.get_group(core, user.actor, e.id, group)["machines"]
        machines.update_group(core, user.actor, e.id, group, None, [m for m in current if m != machine])
    except DomainError as exc:
        return _page(request, user, e, exc)
    return see_other(f"{e.base}/machines?done=machine_removed")
