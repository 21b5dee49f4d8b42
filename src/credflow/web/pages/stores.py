"""Secret stores: list, add (a form derived from the kind's config model), the prerequisite check with its
fixes, who may use the store, and for the builtin store its secrets (names and versions, never values)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import Response

from credflow.domain.errors import DomainError
from credflow.services.secrets import secret_stores, store_checks
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.pages.store_forms import (
    config_from_form,
    config_patch,
    current_values,
    echo_values,
    fields_of,
    hints_of,
)
from credflow.web.pages.users import people_of
from credflow.web.render import (
    PAGE_SIZE,
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
KIND_LABELS = {"builtin": "Builtin (credflow's own encrypted store)", "hashicorp-vault": "HashiCorp Vault / OpenBao",
               "azure-keyvault": "Azure Key Vault", "aws-secretsmanager": "AWS Secrets Manager"}
CHECK_LABELS = {"reachable": "The vault is reachable", "service_can_read": "credflow can read its secrets",
                "caller_may_use": "You may use this store", "same_tenant": "The vault is on the same tenant"}


SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("kind", "Kind"), ("-created", "Newest first"),
         ("created", "Oldest first")]


@router.get("/env/{env}/stores")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    listing, view = list_view(request, SORTS)
    found = secret_stores.page_stores(core_of(request), user.actor, e.id, listing)
    return render(request, "stores/list.html", user=user, env=e, stores=found["items"], kind_labels=KIND_LABELS,
                  view=paged(view, found))


def _form(request: Request, user: WebUser, e: EnvPage, kind: str, form: FormData | None = None,
          error: DomainError | None = None) -> Response:
    registry = core_of(request).registry
    plugin = registry.get(kind)
    fields = fields_of(plugin.Config) if plugin is not None else []
    values = {"name": form_text(form, "name"), "vault_url": form_text(form, "vault_url")} if form else {}
    return render(request, "stores/new.html", user=user, env=e, kind=kind, kinds=registry.kinds(),
                  not_viable=registry.not_viable, kind_labels=KIND_LABELS, fields=fields, values=values,
                  config_values=echo_values(fields, form), error=error, hints=hints_of(kind), section="/stores")


@router.get("/env/{env}/stores/new")
def new_page(request: Request, env: str, user: CurrentUser, kind: str = "builtin") -> Response:
    return _form(request, user, load_env(request, user, env), kind)


@router.post("/env/{env}/stores/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    core = core_of(request)
    kind = form_text(form, "kind")
    plugin = core.registry.get(kind)
    config = config_from_form(fields_of(plugin.Config), form) if plugin is not None else {}
    try:
        store = secret_stores.create_store(core, user.actor, e.id, form_text(form, "name"), kind,
                                           form_text(form, "vault_url") or None, config)
    except DomainError as exc:
        return _form(request, user, e, kind, form, exc)
    return see_other(f"{e.base}/stores/{store['id']}?done=created")


def _detail(request: Request, user: WebUser, e: EnvPage, store_ref: str, report: dict[str, Any] | None = None,
            error: DomainError | None = None, access_values: dict[str, str] | None = None) -> Response:
    core = core_of(request)
    store = secret_stores.get_store(core, user.actor, e.id, store_ref)
    found: dict[str, Any] = {"items": [], "next_cursor": None}
    if store["kind"] == "builtin":
        found = secret_stores.list_secrets(core, user.actor, e.id, store["id"], limit=PAGE_SIZE,
                                           cursor=request.query_params.get("after") or None)
    return render(request, "stores/detail.html", user=user, env=e, store=store, secrets=found["items"],
                  more_secrets=found["next_cursor"], report=report,
                  check_labels=CHECK_LABELS, kind_labels=KIND_LABELS, people=people_of(request, user, e), error=error,
                  access_values=access_values or {}, settings=_settings(request, store), section="/stores")


def _secrets_set(request: Request, store: dict[str, Any]) -> set[str]:
    plugin = core_of(request).registry.get(store["kind"])
    fields = fields_of(plugin.Config) if plugin is not None else []
    labels = {f.label: f.name for f in fields}
    return {labels[label] for label, shown in _settings(request, store) if shown == "set" and label in labels}


def _edit_form(request: Request, user: WebUser, e: EnvPage, store_ref: str, form: FormData | None = None,
               error: DomainError | None = None) -> Response:
    core = core_of(request)
    store = secret_stores.get_store(core, user.actor, e.id, store_ref)
    plugin = core.registry.get(store["kind"])
    fields = fields_of(plugin.Config) if plugin is not None else []
    if form is None:
        values, config_values = {"name": store["name"], "vault_url": store["vault_url"]}, current_values(
            fields, store["config"])
    else:
        values, config_values = {"name": form_text(form, "name"), "vault_url": form_text(form, "vault_url")}, \
            echo_values(fields, form)
    return render(request, "stores/edit.html", user=user, env=e, store=store, kind=store["kind"],
                  kind_labels=KIND_LABELS, fields=fields, values=values, config_values=config_values,
                  hints=hints_of(store["kind"]), editing=True, secrets_set=_secrets_set(request, store), error=error,
                  section="/stores")


@router.get("/env/{env}/stores/{store}/edit")
def edit_page(request: Request, env: str, store: str, user: CurrentUser) -> Response:
    return _edit_form(request, user, load_env(request, user, env), store)


@router.post("/env/{env}/stores/{store}/edit")
def edit(request: Request, env: str, store: str, user: CurrentUser, form: PostedForm) -> Response:
    """Rename, move or reconfigure a store; a secret setting typed in replaces the one kept (a rotated token), an
    empty one keeps it."""
    e = load_env(request, user, env)
    core = core_of(request)
    try:
        got = secret_stores.get_store(core, user.actor, e.id, store)
        plugin = core.registry.get(got["kind"])
        patch = config_patch(fields_of(plugin.Config), form, got["config"]) if plugin is not None else {}
        name, vault_url = form_text(form, "name"), form_text(form, "vault_url")
        secret_stores.update_store(core, user.actor, e.id, got["id"], name=name if name != got["name"] else None,
                                   vault_url=vault_url if vault_url != got["vault_url"] else None,
                                   config=patch or None)
    except DomainError as exc:
        return _edit_form(request, user, e, store, form, exc)
    return see_other(f"{e.base}/stores/{got['id']}?done=saved")


def _delete_page(request: Request, user: WebUser, e: EnvPage, store_ref: str, error: DomainError | None = None
                 ) -> Response:
    got = secret_stores.get_store(core_of(request), user.actor, e.id, store_ref)
    return render(request, "stores/delete.html", user=user, env=e, store=got, kind_labels=KIND_LABELS, error=error,
                  section="/stores")


@router.get("/env/{env}/stores/{store}/delete")
def delete_page(request: Request, env: str, store: str, user: CurrentUser) -> Response:
    """Ask before deleting."""
    return _delete_page(request, user, load_env(request, user, env), store)


@router.post("/env/{env}/stores/{store}/delete")
def delete(request: Request, env: str, store: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        secret_stores.delete_store(core_of(request), user.actor, e.id, store)
    except DomainError as exc:
        return _delete_page(request, user, e, store, exc)
    return see_other(f"{e.base}/stores?done=deleted")


def _settings(request: Request, store: dict[str, Any]) -> list[tuple[str, str]]:
    """The store's settings as the form labels them (nested ones flattened). A secret setting is never shown: the
    view leaves it out when it is set and shows it null when it is not, so it reads "set" or "not set"."""
    plugin = core_of(request).registry.get(store["kind"])
    rows: list[tuple[str, str]] = []
    for f in fields_of(plugin.Config) if plugin is not None else []:
        *parents, leaf = f.name.split(".")
        holder: Any = store["config"]
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        value = holder.get(leaf) if isinstance(holder, dict) else None
        if f.kind == "password":
            shown = "set" if isinstance(holder, dict) and leaf not in holder else "not set"
        elif f.kind == "bool":
            shown = "yes" if value else "no"
        else:
            shown = "—" if value in (None, "") else str(value)
        rows.append((f.label, shown))
    return rows


@router.get("/env/{env}/stores/{store}")
def detail(request: Request, env: str, store: str, user: CurrentUser) -> Response:
    return _detail(request, user, load_env(request, user, env), store)


@router.post("/env/{env}/stores/{store}/check")
def check(request: Request, env: str, store: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    report = store_checks.check_store(core_of(request), user.actor, e.id, store)
    return _detail(request, user, e, store, report=report)


@router.post("/env/{env}/stores/{store}/access")
def set_access(request: Request, env: str, store: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {"principal": form_text(form, "principal"), "allowed": form_text(form, "allowed")}
    try:
        secret_stores.set_access(core_of(request), user.actor, e.id, store, values["principal"],
                                 values["allowed"] != "no")
    except DomainError as exc:
        return _detail(request, user, e, store, error=exc, access_values=values)
    return see_other(f"{e.base}/stores/{store}?done=access_set")


@router.post("/env/{env}/stores/{store}/secrets")
def put_secret(request: Request, env: str, store: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        secret_stores.put_secret(core_of(request), user.actor, e.id, store, form_text(form, "name"),
                                 form_raw(form, "value"))
    except DomainError as exc:
        return _detail(request, user, e, store, error=exc)
    return see_other(f"{e.base}/stores/{store}?done=secret_written")
