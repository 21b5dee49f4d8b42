"""``credflow token``: personal access tokens, one's own and (for administrators) those of the users one manages."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

import typer

from credflow.cli.common import JsonOpt, calling, err, show

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

token_app = typer.Typer(help="Personal access tokens: made with an expiry, listed with their last use, revoked at "
                             "once.", no_args_is_help=True)

TOKEN_COLUMNS = ["id", "name", "created_at", "expires_at", "last_used_at", "expired"]
UserOpt = typer.Option(None, "--user", "-u", help="A user id or email whose tokens to see (administrators; "
                                                  "default: yours).")


def _base(user: str | None) -> str:
    return f"/users/{quote(user, safe='')}/tokens" if user else "/me/tokens"


@token_app.command("create")
def token_create(name: str,
                 expires_in_days: Optional[int] = typer.Option(None, "--expires-in-days",
                                                               help="Days until it stops (default 90, at most "
                                                                    "365)."),
                 as_json: bool = JsonOpt) -> None:
    """Make a token of your own; it is shown only now."""
    body: dict[str, object] = {"name": name}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    with calling() as c:
        show(c.post("/me/tokens", body), as_json, ["id", "name", "expires_at", "token"])


@token_app.command("list")
def token_list(user: Optional[str] = UserOpt, as_json: bool = JsonOpt) -> None:
    """Your tokens (or a user's): name, when made, when they expire and when they were last used."""
    with calling() as c:
        show(c.all(_base(user)), as_json, TOKEN_COLUMNS)


@token_app.command("revoke")
def token_revoke(token_id: str, user: Optional[str] = UserOpt) -> None:
    """Revoke a token: it answers 401 from now on."""
    with calling() as c:
        c.delete(f"{_base(user)}/{quote(token_id, safe='')}")
        err.print(f"revoked token {token_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
