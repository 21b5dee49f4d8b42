"""Teams, for system administrators: the teams of the environment with their members, create a team, add and
remove a member, delete a team (with everything granted to it)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from credflow.domain.errors import DomainError
from credflow.services.access import teams
from credflow.web.auth import CurrentUser, PostedForm, WebUser, core_of
from credflow.web.pages.users import people_of
from credflow.web.render import EnvPage, form_text, list_view, load_env, page_router, paged, render, see_other

router = page_router()


SORTS = [("name", "Name, A to Z"), ("-name", "Name, Z to A"), ("-created", "Newest first"),
         ("created", "Oldest first")]


def _page(request: Request, user: WebUser, e: EnvPage, error: DomainError | None = None,
          values: dict[str, Any] | None = None) -> Response:
    listing, view = list_view(request, SORTS)
    found = teams.page_teams(core_of(request), user.actor, e.id, listing)
    in_env = sorted(people_of(request, user, e), key=lambda p: p["email"].lower()) if e.can("team.write") else []
    return render(request, "teams/list.html", user=user, env=e, teams=found["items"], view=paged(view, found),
                  people=in_env, error=error, values=values or {"name": "", "members": []})


@router.get("/env/{env}/teams")
def list_page(request: Request, env: str, user: CurrentUser) -> Response:
    return _page(request, user, load_env(request, user, env))


@router.post("/env/{env}/teams/new")
def create(request: Request, env: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    name, members = form_text(form, "name"), [str(m) for m in form.getlist("members")]
    values: dict[str, Any] = {"name": name, "members": members}
    try:
        teams.create_team(core_of(request), user.actor, e.id, name, members)
    except DomainError as exc:
        return _page(request, user, e, exc, values)
    return see_other(f"{e.base}/teams?done=created")


@router.post("/env/{env}/teams/{team}/members")
def add_member(request: Request, env: str, team: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        teams.add_member(core_of(request), user.actor, e.id, team, form_text(form, "member"))
    except DomainError as exc:
        return _page(request, user, e, exc)
    return see_other(f"{e.base}/teams?done=member_added")


@router.post("/env/{env}/teams/{team}/members/{member}/remove")
def remove_member(request: Request, env: str, team: str, member: str, user: CurrentUser,
                  form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        teams.remove_member(core_of(request), user.actor, e.id, team, member)
    except DomainError as exc:
        return _page(request, user, e, exc)
    return see_other(f"{e.base}/teams?done=member_removed")


def _delete_page(request: Request, user: WebUser, e: EnvPage, team: str, error: DomainError | None = None
                 ) -> Response:
    got = teams.get_team(core_of(request), user.actor, e.id, team)
    return render(request, "teams/delete.html", user=user, env=e, team=got, error=error, section="/teams")


@router.get("/env/{env}/teams/{team}/delete")
def delete_page(request: Request, env: str, team: str, user: CurrentUser) -> Response:
    """Ask before deleting: what the team's members lose."""
    return _delete_page(request, user, load_env(request, user, env), team)


@router.post("/env/{env}/teams/{team}/delete")
def delete(request: Request, env: str, team: str, user: CurrentUser, form: PostedForm) -> Response:
    e = load_env(request, user, env)
    try:
        teams.delete_team(core_of(request), user.actor, e.id, team)
    except DomainError as exc:
        return _delete_page(request, user, e, team, exc)
    return see_other(f"{e.base}/teams?done=deleted")
