"""``credflow status``: is the server there, which version, who am I, which environment."""

from __future__ import annotations

import os
from typing import Any, Optional

import httpx
import typer

from credflow import __version__
from credflow.cli.common import EnvOpt, JsonOpt, config_path, environment, err, explain, print_json, saved, show
from credflow.client.http import ApiError, Client

# ruff: noqa: UP045  (typer reads Optional[...] annotations)


def status(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """The server (reachable, its version), who you are signed in as, and the current environment.
    Exit 1 when the server cannot be reached or the token is not accepted."""
    server = os.environ.get("CREDFLOW_SERVER") or saved().get("server")
    token = os.environ.get("CREDFLOW_TOKEN") or saved().get("token")
    env_ref = environment(env)
    got: dict[str, Any] = {"cli_version": __version__, "config": str(config_path()), "server": server,
                           "reachable": False, "server_version": None, "user": None, "environment": None,
                           "problems": []}
    if not server:
        got["problems"].append("not signed in: run `credflow login --server URL`")
    else:
        c = Client(server, token)
        try:
            _ask(c, got, env_ref, token)
        finally:
            c.close()
    ok = not got["problems"]
    if as_json:
        print_json(got)
    else:
        me, e = got["user"] or {}, got["environment"] or {}
        show({"server": f"{server or '(none)'}" + (f" (reachable, credflow {got['server_version']})"
                                                  if got["reachable"] else " (not reachable)" if server else ""),
              "signed in as": f"{me.get('name')} ({me.get('email')})" if me.get("email") else
                              f"machine {me.get('name')}" if me else "(nobody)",
              "environment": f"{e.get('name')} (your role: {e.get('my_role')})" if e else env_ref,
              "config": got["config"], "cli": f"credflow {__version__}"}, False)
        for problem in got["problems"]:
            err.print(f"[red]problem[/red]: {problem}", soft_wrap=True)
    if not ok:
        raise typer.Exit(1)


def _ask(c: Client, got: dict[str, Any], env_ref: str, token: str | None) -> None:
    try:
        c.http.get("/healthz").raise_for_status()
        got["reachable"] = True
        info = c.http.get("/openapi.json").json().get("info", {})
        got["server_version"] = info.get("version")
    except (httpx.HTTPError, ValueError) as exc:
        got["problems"].append(explain(exc) or str(exc))
        return
    if not token:
        got["problems"].append("no token: run `credflow login` (it asks for the token)")
        return
    try:
        got["user"] = c.get("/me")
    except ApiError as exc:
        got["problems"].append(f"the token is not accepted: {explain(exc)}; sign in again with `credflow login`")
        return
    try:
        got["environment"] = c.get(f"/environments/{env_ref}")
    except ApiError as exc:
        got["problems"].append(f"environment {env_ref!r}: {explain(exc)}")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
