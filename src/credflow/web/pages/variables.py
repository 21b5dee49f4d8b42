"""Environment variables: list, create a text or a secret one (a store and a secret name, or the Azure resource
id), delete, and Show dependencies."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError
from credflow.services.catalog import dependencies, variables
from credflow.services.secrets import secret_stores
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
FIELDS = ("schema_name", "display_name", "value", "store", "secret_name", "version", "azure_id", "back",
          "username_variable", "password_variable")  # the last two: a credential form's choices, kept


def _stores(request: Request, user: WebUser, e: EnvPage) -> list[dict[str, Any]]:
    if not e.can("secret_store.read"):
        return []
    return secret_stores.list_stores(core_of(request), user.actor, e.id, limit=OPTIONS)["items"]


SORTS = [("name", "Schema name, A to Z"), ("-name", "Schema name, Z to A"), ("display_name", "Display name"),
         ("type", "Type"), ("-created", "Newest first"), ("created", "Oldest first")]


@router.get("/env/{env}/variables")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    listing, view = list_view(request, SORTS)
    found = variables.page_variables(core_of(request), user.actor, e.id, listing)
    return render(request, "variables/list.html", user=user, env=e, variables=found["items"],
                  view=paged(view, found))


def _form(request: Request, user: WebUser, e: EnvPage, type_: str, values: dict[str, str],
          error: DomainError | None = None) -> Response:
    return render(request, "variables/new.html", user=user, env=e, type=type_, values=values,
                  stores=_stores(request, user, e), error=error)


@router.get("/env/{env}/variables/new")
def new_page(request: Request, env: str, user: CurrentUser, type: str = "text", back: str = "",
             username_variable: str = "", password_variable: str = "") -> Response:
    e = load_env(request, user, env)
    values = dict.fromkeys(FIELDS, "")
    if back == "credential":
        values.update(back=back, username_variable=username_variable, password_variable=password_variable)
    return _form(request, user, e, "secret" if type == "secret" else "text", values)


def _reference(values: dict[str, str]) -> Any:
    if values["azure_id"]:
        return values["azure_id"]
    ref: dict[str, Any] = {"store": values["store"], "name": values["secret_name"]}
    if values["version"]:
        ref["version"] = values["version"]
    return ref


@router.post("/env/{env}/variables/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    type_ = "secret" if form_text(form, "type") == "secret" else "text"
    values = {k: form_text(form, k) for k in FIELDS}
    try:
        var = variables.create_variable(
            core_of(request), user.actor, e.id, values["schema_name"], values["display_name"] or None, type_,
            form_raw(form, "value") if type_ == "text" else None,
            _reference(values) if type_ == "secret" else None)
    except DomainError as exc:
        return _form(request, user, e, type_, values, exc)
    if values["back"] == "credential":
        chosen = {k: values[k] for k in ("username_variable", "password_variable")}
        chosen["username_variable" if type_ == "text" else "password_variable"] = var["id"]
        return see_other(f"{e.base}/credentials/new?{urlencode(chosen)}&done=created")
    return see_other(f"{e.base}/variables?done=created")


@router.get("/env/{env}/variables/{var}/dependencies")
def dependencies_page(request: Request, env: str, var: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    got = variables.get_variable(core, user.actor, e.id, var)
    deps = dependencies.variable_dependencies(core, user.actor, e.id, got["id"], limit=500)
    return render(request, "variables/dependencies.html", user=user, env=e, var=got, deps=deps)


def _delete_page(request: Request, user: WebUser, e: EnvPage, var: str, error: DomainError | None = None
                 ) -> Response:
    core = core_of(request)
    got = variables.get_variable(core, user.actor, e.id, var)
    deps = dependencies.variable_dependencies(core, user.actor, e.id, got["id"], limit=50)
    return render(request, "variables/delete.html", user=user, env=e, var=got, deps=deps, error=error,
                  section="/variables")


@router.get("/env/{env}/variables/{var}/delete")
def delete_page(request: Request, env: str, var: str, user: CurrentUser) -> Response:
    """Ask before deleting: what uses the variable, and the Delete button."""
    return _delete_page(request, user, load_env(request, user, env), var)


@router.post("/env/{env}/variables/{var}/delete")
def delete(request: Request, env: str, var: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        variables.delete_variable(core_of(request), user.actor, e.id, var)
    except DomainError as exc:
        return _delete_page(request, user, e, var, exc)
    return see_other(f"{e.base}/variables?done=deleted")
