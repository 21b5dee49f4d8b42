"""People, for system administrators: who has a role in this environment, add a person with a first password,
and set a first password for someone who has none (or has forgotten theirs)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError
from credflow.services.access import passwords, users
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.render import (
    OPTIONS,
    EnvPage,
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
ROLES = [("basic_user", "Basic User"), ("environment_maker", "Environment Maker"),
         ("system_administrator", "System Administrator")]


def people(request: Request, user: WebUser) -> dict[str, dict[str, Any]]:
    """Everyone the caller may see, by id."""
    return {u["id"]: u for u in users.list_users(core_of(request), user.actor, limit=OPTIONS)["items"]}


def person(request: Request, user: WebUser, user_id: str | None) -> dict[str, Any] | None:
    """The person ``user_id``, if the caller may see them."""
    if not user_id:
        return None
    try:
        return users.get_user(core_of(request), user.actor, user_id)
    except DomainError:
        return None


def people_of(request: Request, user: WebUser, e: EnvPage) -> list[dict[str, Any]]:
    """The people with a role in the environment (of the first OPTIONS people the caller sees: a form's choices,
    where anyone else is typed by email)."""
    return [u for u in users.list_users(core_of(request), user.actor, limit=OPTIONS)["items"]
            if e.id in u["environment_roles"]]


SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("email", "Email"), ("-created", "Newest first")]


def _page(request: Request, user: WebUser, e: EnvPage, values: dict[str, str] | None = None,
          error: DomainError | None = None) -> Response:
    listing, view = list_view(request, SORTS)
    found = users.page_users(core_of(request), user.actor, listing)
    return render(request, "users/list.html", user=user, env=e, people=found["items"], view=paged(view, found),
                  roles=ROLES, error=error, values=values or {"name": "", "email": "", "role": "environment_maker"})


@router.get("/env/{env}/users")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _page(request, user, load_env(request, user, env))


@router.post("/env/{env}/users/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    values = {k: form_text(form, k) for k in ("name", "email", "role")}
    first = form.get("password")
    try:
        password = passwords.check_strength(first, values["email"])
        made = users.create_user(core, user.actor, values["name"], values["email"], {e.id: values["role"]})
        passwords.set_password(core, user.actor, made["id"], password)
    except DomainError as exc:
        return _page(request, user, e, values, exc)
    return see_other(f"{e.base}/users?done=created")


@router.post("/env/{env}/users/{user_id}/password")
def set_password(request: Request, env: str, user_id: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        passwords.set_password(core_of(request), user.actor, user_id, form_raw(form, "password"))
    except DomainError as exc:
        return _page(request, user, e, None, exc)
    return see_other(f"{e.base}/users?done=password_set")
