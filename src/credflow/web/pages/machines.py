"""Machines and machine groups: online or offline from heartbeats, a registration token with the agent command
ready to copy, groups of machines (on their own page), and a question before anything is deleted."""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError
from credflow.services.automation import machines, runs
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.pages.runs import why
from credflow.web.pages.users import person
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
SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("-last_seen", "Seen most recently"),
         ("last_seen", "Seen least recently"), ("-created", "Newest first")]
GROUP_SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("-created", "Newest first"),
               ("created", "Oldest first")]


def targets(request: Request, user: WebUser, e: EnvPage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The machines and the machine groups of the environment, by name (for a form's choices)."""
    core = core_of(request)
    return (choices(machines.list_machines(core, user.actor, e.id, limit=OPTIONS)),
            choices(machines.list_groups(core, user.actor, e.id, limit=OPTIONS)))


def agent_commands(request: Request, token: str = "TOKEN") -> list[str]:
    """What to run on a machine to register it with ``token`` and start its agent."""
    server = str(request.base_url).rstrip("/")
    return [f"credflow agent register --server {shlex.quote(server)} --registration-token {shlex.quote(token)} "
            "--name MACHINE-NAME", "credflow agent run"]


def _page(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
          registration: dict[str, Any] | None = None) -> Response:
    listing, view = list_view(request, SORTS)
    found = machines.page_machines(core_of(request), user.actor, e.id, listing)
    commands = agent_commands(request, registration["registration_token"]) if registration is not None else []
    return render(request, "machines/list.html", user=user, env=e, machines=found["items"], view=paged(view, found),
                  error=error, registration=registration, commands=commands, machine_pages=True)


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


RECENT_RUNS = 10


def _machine_page(request: Request, user: WebUser, e: EnvPage, machine: str, error: DomainError | None = None,
                  name: str | None = None) -> Response:
    """A machine's own page: status, last seen, groups, its latest runs, and renaming it."""
    core = core_of(request)
    got = machines.get_machine(core, user.actor, e.id, machine)
    groups = machines.group_names(core, user.actor, e.id, got["groups"])
    recent = runs.page_runs(core, user.actor, e.id, machine=got["id"], limit=RECENT_RUNS)
    items = [{**r, "why": why(r)} for r in recent["items"]]
    return render(request, "machines/detail.html", user=user, env=e, machine=got, error=error,
                  groups=[groups.get(g, "a deleted group") for g in got["groups"]], runs=items,
                  more_runs=recent["next"] is not None, owner=person(request, user, got.get("owner")),
                  name=got["name"] if name is None else name, section="/machines")


@router.get("/env/{env}/machines/{machine}")
def machine_page(request: Request, env: str, machine: str, user: CurrentUser) -> Response:
    return _machine_page(request, user, load_env(request, user, env), machine)


@router.post("/env/{env}/machines/{machine}/rename")
def rename_machine(request: Request, env: str, machine: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    name = form_text(form, "name")
    try:
        got = machines.update_machine(core_of(request), user.actor, e.id, machine, name=name)
    except DomainError as exc:
        return _machine_page(request, user, e, machine, exc, name)
    return see_other(f"{e.base}/machines/{got['id']}?done=renamed")


def _delete_machine_page(request: Request, user: WebUser, e: EnvPage, machine: str,
                         error: DomainError | None = None) -> Response:
    got = machines.get_machine(core_of(request), user.actor, e.id, machine)
    return render(request, "machines/delete.html", user=user, env=e, machine=got, error=error, section="/machines")


@router.get("/env/{env}/machines/{machine}/delete")
def delete_machine_page(request: Request, env: str, machine: str, user: CurrentUser) -> Response:
    """Ask before deleting: what the machine's runs and connections become."""
    return _delete_machine_page(request, user, load_env(request, user, env), machine)


@router.post("/env/{env}/machines/{machine}/delete")
def delete_machine(request: Request, env: str, machine: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        machines.delete_machine(core_of(request), user.actor, e.id, machine)
    except DomainError as exc:
        return _delete_machine_page(request, user, e, machine, exc)
    return see_other(f"{e.base}/machines?done=deleted")


# --- machine groups --------------------------------------------------------------------------------------------
def _groups(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
            group_values: dict[str, Any] | None = None) -> Response:
    listing, view = list_view(request, GROUP_SORTS)
    found = machines.page_groups(core_of(request), user.actor, e.id, listing)
    every = choices(machines.list_machines(core_of(request), user.actor, e.id, limit=OPTIONS))
    return render(request, "machines/groups.html", user=user, env=e, groups=found["items"], view=paged(view, found),
                  machines=every, error=error, group_values=group_values or {"name": "", "machines": []},
                  section="/machines")


@router.get("/env/{env}/machine-groups")
def groups_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _groups(request, user, load_env(request, user, env))


@router.post("/env/{env}/machine-groups/new")
def create_group(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    name, members = form_text(form, "name"), [str(m) for m in form.getlist("machines")]
    values: dict[str, Any] = {"name": name, "machines": members}
    try:
        machines.create_group(core_of(request), user.actor, e.id, name, members)
    except DomainError as exc:
        return _groups(request, user, e, exc, group_values=values)
    return see_other(f"{e.base}/machine-groups?done=created")


def _delete_group_page(request: Request, user: WebUser, e: EnvPage, group: str,
                       error: DomainError | None = None) -> Response:
    got = machines.get_group(core_of(request), user.actor, e.id, group)
    return render(request, "machines/delete_group.html", user=user, env=e, group=got, error=error,
                  section="/machines")


@router.get("/env/{env}/machine-groups/{group}/delete")
def delete_group_page(request: Request, env: str, group: str, user: CurrentUser) -> Response:
    return _delete_group_page(request, user, load_env(request, user, env), group)


@router.post("/env/{env}/machine-groups/{group}/delete")
def delete_group(request: Request, env: str, group: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        machines.delete_group(core_of(request), user.actor, e.id, group)
    except DomainError as exc:
        return _delete_group_page(request, user, e, group, exc)
    return see_other(f"{e.base}/machine-groups?done=deleted")


@router.post("/env/{env}/machine-groups/{group}/machines")
def add_to_group(request: Request, env: str, group: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    try:
        current = machines.get_group(core, user.actor, e.id, group)["machines"]
        machines.update_group(core, user.actor, e.id, group, None, [*current, form_text(form, "machine")])
    except DomainError as exc:
        return _groups(request, user, e, exc)
    return see_other(f"{e.base}/machine-groups?done=machine_added")


@router.post("/env/{env}/machine-groups/{group}/machines/{machine}/remove")
def remove_from_group(request: Request, env: str, group: str, machine: str, user: CurrentUser,
                      form: PostedForm) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    try:
        current = machines.get_group(core, user.actor, e.id, group)["machines"]
        machines.update_group(core, user.actor, e.id, group, None, [m for m in current if m != machine])
    except DomainError as exc:
        return _groups(request, user, e, exc)
    return see_other(f"{e.base}/machine-groups?done=machine_removed")
