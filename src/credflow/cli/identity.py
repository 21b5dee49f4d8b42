"""``credflow token``: personal access tokens, one's own and (for administrators) those of the users one manages;
and ``credflow login --sso``: signing in through the identity provider with a device code (RFC 8628)."""

from __future__ import annotations

import time
from typing import Any, Optional
from urllib.parse import quote

import typer

from credflow.cli.common import JsonOpt, calling, err, fail, save_login, show
from credflow.client.http import ApiError, Client

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


def login_sso(server: str, env: str | None) -> None:
    """Ask credflow for a device sign-in, show the person where to confirm it, wait, and keep the credflow token
    it ends with (the provider's tokens stay with the server)."""
    c = Client(server, None)
    try:
        started = c.post("/auth/device")
        where = started.get("verification_uri_complete") or started.get("verification_uri")
        err.print(f"To sign in, open {started.get('verification_uri')} and enter the code {started.get('user_code')}")
        if where != started.get("verification_uri"):
            err.print(f"(or open {where} directly)")
        deadline = time.monotonic() + int(started.get("expires_in") or 600)
        interval = max(int(started.get("interval") or 5), 1)
        got: Any = None
        while time.monotonic() < deadline:
            time.sleep(interval)
            got = c.post("/auth/device/token", {"handle": started["handle"]})
            if isinstance(got, dict) and "token" in got:
                break
        else:
            fail("the sign-in was not confirmed in time; run `credflow login --sso` again")
    except ApiError as exc:
        fail(f"sign-in failed: {exc.problem.get('detail')} ({exc.status} {exc.problem.get('code', '')})")
    finally:
        c.close()
    path = save_login(server, got["token"], env)
    err.print(f"signed in as {got['user']['name']}; a credflow token that expires {got['expires_at']} is saved to "
              f"{path}")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
