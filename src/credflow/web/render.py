"""Rendering pages: the Jinja2 environment, the page context, and the route class that turns what a page raises
(no session, a rejected CSRF token, a service's DomainError) into what the person sees."""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from credflow.domain.errors import DomainError
from credflow.domain.roles import EnvironmentRole, env_allows
from credflow.services.access import users
from credflow.services.automation import health
from credflow.services.lookup import Listing
from credflow.web.auth import CsrfRejected, PasswordChangeRequired, SignInRequired, WebUser, core_of

log = logging.getLogger("credflow.web")

TEMPLATES = Path(__file__).parent / "templates"
ROLE_LABELS = {
    "owner": "Owner",
    "co_owner": "Co-owner (can edit)",
    "user": "User (can view only)",
    "user_share": "User (can view and share)",
}
ENV_ROLE_LABELS = {
    "system_administrator": "System Administrator",
    "environment_maker": "Environment Maker",
    "basic_user": "Basic User",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
DONE = {
    "created": "Created.",
    "saved": "Saved.",
    "deleted": "Deleted.",
    "shared": "Shared. The environment variables of the credential are shared as well.",
    "unshared": "Access removed. The environment variables stay shared.",
    "password_changed": "Your password is changed.",
    "session_ended": "The session is ended: that browser is signed out.",
    "token_revoked": "The token is revoked: it works no more.",
    "password_set": "The password is set; the user chooses their own at the next sign-in.",
    "secret_written": "A new version of the secret is written.",
    "access_set": "Access to the store is updated.",
    "queued": "Queued.",
    "imported": "Imported.",
    "member_added": "The member is added.",
    "member_removed": "The member is removed; what they held through the team ends now.",
    "machine_added": "The machine is added to the group.",
    "machine_removed": "The machine is removed from the group.",
    "renamed": "Renamed.",
}
# What the services say in the API's words, as the pages say it (the error's code stays shown beside it).
WORDING = (
    ("; delete them first or pass force=true", ". Delete those connections first, or tick \u201cDelete anyway\u201d"),
    ("schema_name is a letter", "The schema name is a letter"),
    ("display_name may not be empty", "The display name may not be empty"),
    ("a text variable carries value, not secret_reference", "A text variable has a value, not a secret"),
    ("a secret variable carries secret_reference, never a value", "A secret variable names a secret, never a value"),
    ("vault_url is required for this kind", "This kind of store needs its vault URL"),
)
PAGE_SIZE = 50
_SLUG = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def when(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


jinja = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                    trim_blocks=True, lstrip_blocks=True)
jinja.filters["when"] = when
jinja.filters["role_label"] = lambda r: ROLE_LABELS.get(r or "", r or "")
jinja.filters["env_role_label"] = lambda r: ENV_ROLE_LABELS.get(r or "", r or "")
jinja.filters["q"] = lambda v: quote(str(v), safe="")
# A command line as a shell would read it back: sh -c 'echo "$X"' stays one argument.
jinja.filters["shell"] = lambda argv: shlex.join(str(a) for a in argv or [])

# Navigation entries (label, path under the environment, the environment action that shows it); page modules
# append theirs when they are included.
NAV: list[tuple[str, str, str]] = []


@dataclass
class EnvPage:
    id: str
    name: str
    role: EnvironmentRole
    base: str  # "/env/<name or id>"

    def can(self, action: str) -> bool:
        return env_allows(self.role, action)


def env_base(env: dict[str, Any]) -> str:
    """The path of an environment's pages: by name when the name is URL-safe, else by id."""
    return f"/env/{env['name'] if _SLUG.match(env['name']) else env['id']}"


def load_env(request: Request, user: WebUser, env_ref: str) -> EnvPage:
    got = users.get_environment(core_of(request), user.actor, env_ref)
    return EnvPage(id=got["id"], name=got["name"], role=EnvironmentRole(got["my_role"]), base=env_base(got))


def render(request: Request, template: str, *, user: WebUser | None = None, env: EnvPage | None = None,
           status: int = 200, error: DomainError | None = None, headers: dict[str, str] | None = None,
           csrf: str = "", **ctx: Any) -> HTMLResponse:
    envs = users.list_environments(core_of(request), user.actor, limit=OPTIONS)["items"] if user is not None else []
    nav = [(label, path) for label, path, action in NAV if env is not None and env.can(action)]
    counts = health.attention(core_of(request), user.actor, env.id) if user is not None and env is not None else {}
    badges = {"/health": counts.get("critical", 0) + counts.get("warning", 0)}  # what needs attention
    body = jinja.get_template(template).render(
        request=request, user=user, env=env, envs=envs, nav=nav, badges=badges, csrf=user.csrf if user else csrf,
        error=_error_view(error), done_text=DONE.get(request.query_params.get("done", ""), ""),
        env_base=env_base, **ctx)
    return HTMLResponse(body, status_code=error.status if error is not None and status == 200 else status,
                        headers={**SECURITY_HEADERS, **(headers or {})})


def _error_view(error: DomainError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    detail = error.detail
    for api_words, page_words in WORDING:
        detail = detail.replace(api_words, page_words)
    return {"status": error.status, "code": error.code, "title": error.title, "detail": detail,
            "extra": error.extra}


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path of this site (never ``//host`` or a URL) may be a redirect target."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _error_page(request: Request, error: DomainError) -> HTMLResponse:
    user: WebUser | None = getattr(request.state, "web_user", None)
    env = None
    env_ref = request.path_params.get("env")
    if user is not None and env_ref:
        try:
            env = load_env(request, user, env_ref)
        except DomainError:
            env = None
    return render(request, "error.html", user=user, env=env, error=error)


def _redirect(request: Request, target: str) -> Response:
    """A redirect of the whole page, also when htmx asked for a fragment of it."""
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return see_other(target)


class WebRoute(APIRoute):
    """A page route: it answers a missing session with the sign-in page and any error with a page saying it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired:
                target = "/sign-in"
                if request.method == "GET" and not request.headers.get("hx-request"):
                    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    target += f"?next={quote(path, safe='')}"
                return _redirect(request, target)
            except PasswordChangeRequired:
                return _redirect(request, "/account/password")
            except CsrfRejected:
                err = DomainError("the form has expired or did not come from this site; reload the page and try "
                                  "again", code="csrf_rejected")
                err.status, err.title = 403, "Form rejected"
                return await run_in_threadpool(_error_page, request, err)
            except DomainError as exc:
                return await run_in_threadpool(_error_page, request, exc)
            except RequestValidationError:
                err = DomainError("the request is missing a field this page needs", code="malformed")
                return await run_in_threadpool(_error_page, request, err)

        return handler


def page_router() -> APIRouter:
    return APIRouter(route_class=WebRoute, include_in_schema=False)


def form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_raw(form: Any, name: str) -> str:
    """A field as typed, blanks and all (a password, a secret value); empty when missing."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def by_name(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as a person looks for them: by name, whatever the case."""
    return sorted(rows, key=lambda row: row["name"].lower())


# A form's choices are the first OPTIONS rows of a list (one page, read in the database), never a whole table.
OPTIONS = 200


def choices(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one page of a list (asked for with ``limit=OPTIONS``), by name: a form's choices."""
    return by_name(found["items"])


@dataclass
class ListView:
    """What a list page shows around its rows: the search, the sort choices and the links to the pages around.
    ``sorts`` are ``(value, label)``: a value is a sort key of the service, ``-key`` for the reverse order."""

    path: str
    search: str
    sort: str
    sorts: list[tuple[str, str]]
    keep: dict[str, str] = field(default_factory=dict)  # other filters the links carry along
    total: int | None = None
    first: int = 0
    last: int = 0
    previous_url: str | None = None
    next_url: str | None = None

    def url(self, **changes: str | int | None) -> str:
        params: dict[str, Any] = {**self.keep, "q": self.search, "sort": self.sort, **changes}
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return f"{self.path}?{query}" if query else self.path


def _query_int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() and 0 < int(value) < 10**9 else default


def list_view(request: Request, sorts: list[tuple[str, str]], keep: dict[str, str] | None = None
              ) -> tuple[Listing, ListView]:
    """The list a page is asked for (``?q=``, ``?sort=`` one of ``sorts``, ``?page=``) as a service Listing of
    ``PAGE_SIZE`` rows, and the view to fill in with ``paged`` once the page of rows is found."""
    search = request.query_params.get("q", "").strip()
    sort = request.query_params.get("sort", "")
    if sort not in {value for value, _ in sorts}:
        sort = sorts[0][0]
    number = _query_int(request, "page", 1)
    listing = Listing(search=search, sort=sort.lstrip("-"), descending=sort.startswith("-"),
                      offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return listing, ListView(request.url.path, search, sort, sorts, keep or {})


def paged(view: ListView, found: dict[str, Any]) -> ListView:
    """``view`` with the counts and the links of the page of rows ``found`` (a service's ``page_...``)."""
    number = found["offset"] // found["limit"] + 1
    view.total = found["total"]
    view.first = found["offset"] + 1 if found["items"] else 0
    view.last = found["offset"] + len(found["items"])
    view.previous_url = view.url(page=number - 1 if number > 2 else None) if number > 1 else None
    view.next_url = view.url(page=number + 1) if view.last < found["total"] else None
    return view


def keyset_view(request: Request, sorts: list[tuple[str, str]], found: dict[str, Any],
                keep: dict[str, str] | None = None) -> ListView:
    """The view of a list paged along a time-ordered key (``?after=``, ``?before=``): no count, only the links
    to the pages before and after (``found['previous']``, ``found['next']``)."""
    search = request.query_params.get("q", "").strip()
    sort = request.query_params.get("sort", "")
    view = ListView(request.url.path, search, sort if sort in {v for v, _ in sorts} else sorts[0][0], sorts,
                    keep or {})
    view.first, view.last = (1, len(found["items"])) if found["items"] else (0, 0)
    view.previous_url = view.url(before=found["previous"]) if found["previous"] else None
    view.next_url = view.url(after=found["next"]) if found["next"] else None
    return view
