"""Share a credential, as the seed says: add people or teams and pick Co-owner (can edit), User (can view only)
or User (can view and share); remove access."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError, Forbidden
from credflow.domain.roles import GRANTABLE, CredentialRole
from credflow.services.access import teams
from credflow.services.catalog import credentials, sharing
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.pages.users import people_of
from credflow.web.render import OPTIONS, EnvPage, form_text, load_env, page_router, render, see_other

router = page_router()
ORDER = (CredentialRole.CO_OWNER, CredentialRole.USER, CredentialRole.USER_SHARE)


def _page(request: Request, user: WebUser, e: EnvPage, cred_ref: str, values: dict[str, str] | None = None,
          error: DomainError | None = None) -> Response:
    core = core_of(request)
    cred = credentials.get_credential(core, user.actor, e.id, cred_ref)
    mine = CredentialRole(cred["my_role"])
    grantable = [r.value for r in ORDER if r in GRANTABLE[mine]]
    if not grantable:
        raise Forbidden(f"your role {mine.value} on this credential does not allow share")
    shares = sharing.list_shares(core, user.actor, e.id, cred["id"], limit=500)["items"]
    in_env = people_of(request, user, e)
    env_teams: list[dict[str, Any]] = teams.list_teams(core, user.actor, e.id, limit=OPTIONS)["items"]
    return render(request, "credentials/share.html", user=user, env=e, cred=cred, shares=shares,
                  grantable=grantable, people=in_env, teams=env_teams, error=error,
                  values=values or {"principal": "", "role": grantable[-1] if len(grantable) == 1 else "user"})


@router.get("/env/{env}/credentials/{cred}/share")
def share_page(request: Request, env: str, cred: str, user: CurrentUser) -> Response:
    return _page(request, user, load_env(request, user, env), cred)


@router.post("/env/{env}/credentials/{cred}/share")
def share(request: Request, env: str, cred: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    values = {"principal": form_text(form, "principal"), "role": form_text(form, "role")}
    try:
        sharing.share(core_of(request), user.actor, e.id, cred, values["principal"], values["role"])
    except DomainError as exc:
        return _page(request, user, e, cred, values, exc)
    return see_other(f"{e.base}/credentials/{cred}/share?done=shared")


@router.post("/env/{env}/credentials/{cred}/share/remove")
def unshare(request: Request, env: str, cred: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        sharing.unshare(core_of(request), user.actor, e.id, cred, form_text(form, "principal"))
    except DomainError as exc:
        return _page(request, user, e, cred, None, exc)
    return see_other(f"{e.base}/credentials/{cred}/share?done=unshared")
