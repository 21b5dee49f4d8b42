"""``credflow team``: teams, and ``credflow team member`` for who is in one."""

from __future__ import annotations

from typing import Optional

import typer

from credflow.cli.common import EnvOpt, JsonOpt, YesOpt, calling, confirm, environment, err, show

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

team_app = typer.Typer(help="Teams: groups of users a credential can be shared with.", no_args_is_help=True)
member_app = typer.Typer(help="The members of a team.", no_args_is_help=True)

TEAM_COLUMNS = ["id", "name", "members"]


def _members(value: list[dict[str, str]]) -> str:
    return ", ".join(m["email"] for m in value)


@team_app.command("create")
def team_create(name: str, member: list[str] = typer.Option([], help="A user id or email (repeatable)."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.post(f"/environments/{environment(env)}/teams", {"name": name, "members": member}), as_json,
             TEAM_COLUMNS, {"members": _members})


@team_app.command("list")
def team_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(f"/environments/{environment(env)}/teams"), as_json, TEAM_COLUMNS, {"members": _members})


@team_app.command("delete")
def team_delete(team: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    """Delete a team and every share and store permission granted to it."""
    confirm(f"delete team {team} and every share and store permission granted to it", yes)
    with calling() as c:
        c.delete(f"/environments/{environment(env)}/teams/{team}")
        err.print(f"deleted team {team}")


@member_app.command("add")
def member_add(team: str, user: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Add a user (id or email) to a team."""
    with calling() as c:
        show(c.put(f"/environments/{environment(env)}/teams/{team}/members/{user}"), as_json, TEAM_COLUMNS,
             {"members": _members})


@member_app.command("remove")
def member_remove(team: str, user: str, env: Optional[str] = EnvOpt) -> None:
    """Remove a user from a team; what came through the team ends at once."""
    with calling() as c:
        c.delete(f"/environments/{environment(env)}/teams/{team}/members/{user}")
        err.print(f"removed {user} from {team}")


team_app.add_typer(member_app, name="member")
# The old spellings, kept for one release.
team_app.command("add", hidden=True)(member_add)
team_app.command("remove", hidden=True)(member_remove)


def register(app: typer.Typer) -> None:
    app.add_typer(team_app, name="team")
