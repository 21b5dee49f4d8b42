"""The Credentials page, as the seed describes it: list, create, edit, delete (sharing is in ``sharing``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError, Forbidden
from credflow.domain.roles import CredentialRole, credential_allows
from credflow.services.automation import leases
from credflow.services.catalog import credentials, dependencies, sharing, variables
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.pages.users import person
from credflow.web.render import (
    OPTIONS,
    EnvPage,
    form_text,
    list_view,
    load_env,
    page_router,
    paged,
    render,
    see_other,
)

router = page_router()

IMMUTABLE_REASON = ("You cannot edit the selected environment variables in an existing credential. To change the "
                    "username or password, update the environment variables or the vault secret.")


def allowed(cred: dict[str, Any]) -> dict[str, bool]:
    """What the caller's role on the credential allows, from the same table the services ask."""
    role = CredentialRole(cred["my_role"]) if cred.get("my_role") else None
    return {a: credential_allows(role, a) for a in ("view", "use", "share", "edit", "delete")}


def _variables(request: Request, user: WebUser, env: EnvPage) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in variables.list_variables(core_of(request), user.actor, env.id, limit=OPTIONS)["items"]}


def _variables_of(request: Request, user: WebUser, env: EnvPage, cred: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The credential's own two variables, by id (those the caller may see)."""
    found: dict[str, dict[str, Any]] = {}
    for ref in (cred["username_variable"], cred["password_variable"]):
        try:
            found[ref] = variables.get_variable(core_of(request), user.actor, env.id, ref)
        except DomainError:
            continue
    return found


SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("-created", "Newest first"),
         ("created", "Oldest first"), ("status", "Status")]


@router.get("/env/{env}/credentials")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    listing, view = list_view(request, SORTS)
    found = credentials.page_credentials(core_of(request), user.actor, e.id, listing)
    return render(request, "credentials/list.html", user=user, env=e, credentials=found["items"],
                  view=paged(view, found))


def _new_form(request: Request, user: WebUser, e: EnvPage, values: dict[str, str],
              error: DomainError | None = None) -> Response:
    found = _variables(request, user, e).values()
    text_vars = [(v["id"], f"{v['display_name']} ({v['schema_name']})") for v in found if v["type"] == "text"]
    secret_vars = [(v["id"], f"{v['display_name']} ({v['schema_name']})") for v in found if v["type"] == "secret"]
    return render(request, "credentials/new.html", user=user, env=e, values=values, text_vars=text_vars,
                  secret_vars=secret_vars, error=error)


@router.get("/env/{env}/credentials/new")
def new_page(request: Request, env: str, user: CurrentUser, username_variable: str = "",
             password_variable: str = "") -> Response:
    e = load_env(request, user, env)
    values = {"name": "", "description": "", "username_variable": username_variable,
              "password_variable": password_variable}
    return _new_form(request, user, e, values)


@router.post("/env/{env}/credentials/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {k: form_text(form, k) for k in ("name", "description", "username_variable", "password_variable")}
    try:
        cred = credentials.create_credential(core_of(request), user.actor, e.id, values["name"],
                                             values["description"] or None, values["username_variable"],
                                             values["password_variable"])
    except DomainError as exc:
        return _new_form(request, user, e, values, exc)
    return see_other(f"{e.base}/credentials/{cred['id']}?done=created")


@router.get("/env/{env}/credentials/{cred}")
def detail(request: Request, env: str, cred: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    got = credentials.get_credential(core, user.actor, e.id, cred)
    shares = sharing.list_shares(core, user.actor, e.id, got["id"], limit=500)["items"]
    deps = dependencies.credential_dependencies(core, user.actor, e.id, got["id"])
    got = {**got, "leases": leases.leases_of(core, user.actor, e.id, got["id"])}
    return render(request, "credentials/detail.html", user=user, env=e, cred=got, can=allowed(got), shares=shares,
                  deps=deps, variables=_variables_of(request, user, e, got), owner=person(request, user, got["owner"]))


def _allowed_to(request: Request, user: WebUser, e: EnvPage, cred: str, action: str) -> dict[str, Any]:
    """The credential, if the caller's role on it allows ``action`` (403 otherwise)."""
    got = credentials.get_credential(core_of(request), user.actor, e.id, cred)
    if not allowed(got)[action]:
        raise Forbidden(f"your role {got['my_role']} on this credential does not allow {action}")
    return got


def _edit_form(request: Request, user: WebUser, e: EnvPage, got: dict[str, Any], values: dict[str, Any],
               error: DomainError | None = None) -> Response:
    return render(request, "credentials/edit.html", user=user, env=e, cred=got, values=values, can=allowed(got),
                  variables=_variables_of(request, user, e, got), reason=IMMUTABLE_REASON, error=error)


@router.get("/env/{env}/credentials/{cred}/edit")
def edit_page(request: Request, env: str, cred: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    got = _allowed_to(request, user, e, cred, "edit")
    return _edit_form(request, user, e, got, got)


@router.post("/env/{env}/credentials/{cred}/edit")
def edit(request: Request, env: str, cred: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    changes: dict[str, Any] = {"name": form_text(form, "name"), "description": form_text(form, "description") or None}
    if "max_concurrent_runs" in form:  # empty: no limit; anything but a whole number is refused, and said why
        limit = form_text(form, "max_concurrent_runs")
        changes["max_concurrent_runs"] = int(limit) if limit.isdigit() else limit or None
    try:
        got = credentials.update_credential(core_of(request), user.actor, e.id, cred, changes)
    except DomainError as exc:
        current = credentials.get_credential(core_of(request), user.actor, e.id, cred)
        return _edit_form(request, user, e, current, {**current, **changes}, exc)
    return see_other(f"{e.base}/credentials/{got['id']}?done=saved")


def _delete_form(request: Request, user: WebUser, e: EnvPage, got: dict[str, Any],
                 error: DomainError | None = None) -> Response:
    deps = dependencies.credential_dependencies(core_of(request), user.actor, e.id, got["id"], limit=500)
    return render(request, "credentials/delete.html", user=user, env=e, cred=got, deps=deps,
                  can=allowed(got), variables=_variables(request, user, e), error=error)


@router.get("/env/{env}/credentials/{cred}/delete")
def delete_page(request: Request, env: str, cred: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    return _delete_form(request, user, e, _allowed_to(request, user, e, cred, "delete"))


@router.post("/env/{env}/credentials/{cred}/delete")
def delete(request: Request, env: str, cred: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    try:
        credentials.delete_credential(core, user.actor, e.id, cred, force=form.get("force") == "yes")
    except DomainError as exc:
        return _delete_form(request, user, e, credentials.get_credential(core, user.actor, e.id, cred), exc)
    return see_other(f"{e.base}/credentials?done=deleted")
