"""The web pages at ``/``: sign-in, sign-out, one's own password, the static files, and every page module.

Pages call the same service functions as the API, with an Actor built from the signed-in user, so they offer no
rule the API lacks; what a service refuses is shown on the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from credflow.domain.errors import (
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    TooManyRequests,
    Unauthenticated,
)
from credflow.services.access import failed_auth, passwords, sessions, sso, startup, tokens, users
from credflow.services.automation import health as health_service
from credflow.web import auth
from credflow.web.auth import AnyUser, CurrentUser, PostedForm
from credflow.web.pages import (
    audit,
    cloud_flows,
    connections,
    credentials,
    health,
    machines,
    runs,
    sharing,
    solutions,
    stores,
    teams,
    variables,
)
from credflow.web.pages import users as user_pages
from credflow.web.render import (
    NAV,
    OPTIONS,
    SECURITY_HEADERS,
    env_base,
    form_raw,
    form_text,
    load_env,
    page_router,
    render,
    safe_next,
    see_other,
)

STATIC = Path(__file__).parent / "static"
_STATIC_FILES = {"htmx.min.js": "text/javascript", "htmx.LICENSE": "text/plain", "app.css": "text/css",
                 "app.js": "text/javascript"}

router = page_router()


@router.get("/")
def home(request: Request, user: CurrentUser, done: str = "") -> Response:
    envs = users.list_environments(auth.core_of(request), user.actor, limit=1)["items"]
    if not envs:
        return render(request, "no_environment.html", user=user)
    critical = health_service.attention(auth.core_of(request), user.actor, envs[0]["id"])["critical"]
    first = "/health" if critical else "/credentials"  # the first page after sign-in, when anything is critical
    return see_other(f"{env_base(envs[0])}{first}" + (f"?done={quote(done)}" if done else ""))


@router.get("/switch")
def switch_environment(request: Request, user: CurrentUser, env: str = "") -> Response:
    return see_other(f"{load_env(request, user, env).base}/credentials")


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in _STATIC_FILES:
        raise NotFound("no such file", code="not_found")
    return FileResponse(STATIC / name, media_type=_STATIC_FILES[name],
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


def _sign_in_page(request: Request, next_: str, email: str = "", error: DomainError | None = None,
                  status: int = 200, headers: dict[str, str] | None = None) -> Response:
    value, token, fresh = auth.presession(request)
    core = auth.core_of(request)
    settings = core.settings
    if sso.enabled(settings):  # the "Sign in with ..." form is answered by a redirect to the provider
        origins = " ".join(sso.provider_origins(core))
        headers = {**(headers or {}), "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"]
                   .replace("form-action 'self'", f"form-action 'self' {origins}")}
    resp = render(request, "sign_in.html", csrf=token, next=next_, email=email, error=error, status=status,
                  headers=headers, local_passwords=settings.local_passwords,
                  sso_name=sso.provider_name(settings) if sso.enabled(settings) else None)
    if fresh:
        auth.set_cookie(request, resp, auth.PRESESSION_COOKIE, value, 3600)
    return resp


@router.get("/sign-in")
def sign_in_page(request: Request, next: Annotated[str, Query()] = "/") -> Response:
    if auth.session_user(request) is not None:
        return see_other(safe_next(next))
    return _sign_in_page(request, safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    auth.check_presession(request, form)
    return await run_in_threadpool(_sign_in, request, form_text(form, "email"), form_raw(form, "password"),
                                   safe_next(form_text(form, "next")))


def _sign_in(request: Request, email: str, password: str, next_: str) -> Response:
    web, core = auth.state(request), auth.core_of(request)
    if not core.settings.local_passwords:
        return _sign_in_page(request, next_, email, Forbidden(
            f"passwords are turned off here: sign in with {sso.provider_name(core.settings)}",
            code="local_passwords_off"))
    client = auth.client_address(request)
    account = f"{email.lower()}|{client}"
    # The address first: locked out after too many failures of any kind from it (failed_auth), then the account.
    wait = failed_auth.password_wait(core, client, request.url.path)
    err: DomainError = failed_auth.refusal(wait)
    if not wait:
        wait = web.per_account.retry_after(account)
        err = TooManyRequests(f"too many failed sign-ins; try again in {wait} seconds", code="sign_in_throttled")
    if wait:
        return _sign_in_page(request, next_, email, err, headers={"Retry-After": str(wait)})
    try:
        actor = passwords.sign_in(core, email, password, client)
    except Unauthenticated as exc:
        web.per_account.fail(account)
        failed_auth.password_failed(core, client)
        return _sign_in_page(request, next_, email, exc)
    web.per_account.clear(account)
    resp = see_other(next_)
    auth.start_session(request, resp, actor.id)
    resp.delete_cookie(auth.PRESESSION_COOKIE, path="/")
    return resp


def _redirect_uri(request: Request) -> str:
    base = auth.core_of(request).settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/auth/oidc/callback"


@router.post("/auth/oidc/start")
async def sso_start(request: Request) -> Response:
    """Send the browser to the identity provider (the sign-in page's "Sign in with ..." button)."""
    form = await request.form()
    auth.check_presession(request, form)
    core = auth.core_of(request)
    next_ = safe_next(form_text(form, "next"))
    if not sso.enabled(core.settings):
        raise NotFound("single sign-on is not set up here", code="sso_not_configured")
    try:
        url = await run_in_threadpool(sso.begin_browser, core, request.cookies.get(auth.PRESESSION_COOKIE, ""),
                                      next_, _redirect_uri(request))
    except DomainError as exc:
        return _sign_in_page(request, next_, error=exc)
    return see_other(url)


@router.get("/auth/oidc/callback")
def sso_callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    """The identity provider sends the browser back here: a session when everything checks out, else the sign-in
    page saying why (and nothing made)."""
    core = auth.core_of(request)
    if not sso.enabled(core.settings):
        raise NotFound("single sign-on is not set up here", code="sso_not_configured")
    client = auth.client_address(request)
    wait = failed_auth.password_wait(core, client, request.url.path)
    if wait:
        return _sign_in_page(request, "/", error=failed_auth.refusal(wait), headers={"Retry-After": str(wait)})
    try:
        actor, next_ = sso.finish_browser(core, state[:200], code[:2000], error[:200] or None,
                                          request.cookies.get(auth.PRESESSION_COOKIE, ""), client)
    except sso.SsoRefused as exc:
        failed_auth.password_failed(core, client)
        return _sign_in_page(request, "/", error=exc)
    except DomainError as exc:
        return _sign_in_page(request, "/", error=exc)
    resp = see_other(safe_next(next_))
    auth.start_session(request, resp, actor.id, via="oidc")
    resp.delete_cookie(auth.PRESESSION_COOKIE, path="/")
    return resp


@router.post("/sign-out")
def sign_out(request: Request, user: AnyUser, form: PostedForm) -> Response:
    resp = see_other("/sign-in")
    auth.end_session(request, resp)
    return resp


@router.get("/account")
def account_page(request: Request, user: CurrentUser, done: str = "") -> Response:
    """One's sessions and API tokens, each of which can be ended here."""
    core = auth.core_of(request)
    return render(request, "account.html", user=user, sessions=sessions.list_mine(core, user.actor, user.session_id),
                  tokens=tokens.list_tokens(core, user.actor, limit=OPTIONS)["items"])


@router.post("/account/sessions/{session_id}/end")
def end_account_session(request: Request, session_id: str, user: CurrentUser, form: PostedForm) -> Response:
    sessions.end_mine(auth.core_of(request), user.actor, session_id)
    if session_id != user.session_id:
        return see_other("/account?done=session_ended")
    resp = see_other("/sign-in")
    auth.end_session(request, resp)
    return resp


@router.post("/account/tokens/{token_id}/revoke")
def revoke_account_token(request: Request, token_id: str, user: CurrentUser, form: PostedForm) -> Response:
    tokens.revoke(auth.core_of(request), user.actor, token_id)
    return see_other("/account?done=token_revoked")


@router.get("/account/password")
def password_page(request: Request, user: AnyUser) -> Response:
    return render(request, "account_password.html", user=user)


@router.post("/account/password")
def change_password(request: Request, user: AnyUser, form: PostedForm) -> Response:
    current, new, confirm = (str(form.get(k) or "") for k in ("current", "new", "confirm"))
    try:
        if new != confirm:
            raise RuleViolation("the new password and its confirmation differ", code="password_mismatch")
        passwords.change_password(auth.core_of(request), user.actor, current, new)
    except DomainError as exc:
        return render(request, "account_password.html", user=user, error=exc)
    resp = see_other("/?done=password_changed")
    auth.end_session(request, resp)
    auth.start_session(request, resp, user.actor.id)
    return resp


for _module in (credentials, sharing, variables, stores, machines, connections, runs, cloud_flows, solutions,
                user_pages, teams, audit, health):
    router.include_router(_module.router)
NAV[:] = [("Health", "/health", "environment.read"),
          ("Credentials", "/credentials", "environment.read"),
          ("Environment variables", "/variables", "environment.read"),
          ("Secret stores", "/stores", "secret_store.read"),
          ("Machines", "/machines", "machine.read"),
          ("Connections", "/connections", "connection.list"),
          ("Runs", "/runs", "run.read"),
          ("Cloud flows", "/cloud-flows", "cloud_flow.read"),
          ("Solutions", "/solutions", "solution.read"),
          ("People", "/users", "user.admin"),
          ("Teams", "/teams", "team.write"),
          ("Audit", "/audit", "audit.read")]


def install(app: FastAPI) -> None:
    """Serve the pages from ``app`` (called by ``create_app``)."""
    startup.check(app.state.core.settings)  # a weak bootstrap token, half-set single sign-on: refused, saying why
    app.state.web = auth.WebState(codec=auth.SessionCodec(app.state.core.keyring))
    app.include_router(router)
