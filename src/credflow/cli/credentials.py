"""``credflow credential``: credentials, who they are shared with, and where they are used."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

import typer

from credflow.cli.common import EnvOpt, JsonOpt, YesOpt, calling, confirm, environment, err, names, show, usage
from credflow.cli.dependencies import show_dependencies
from credflow.client.http import Client
from credflow.client.names import Names

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

cred_app = typer.Typer(help="Credentials: a text username variable and a secret password variable.",
                       no_args_is_help=True)
SHARE_COLUMNS = ["principal", "principal_type", "name", "email", "role"]


def credential_id(c: Client, env: str, name: str, nm: Names | None = None) -> str:
    """The id of a credential named by id, name or a unique prefix of its id (the server answers 404 for none)."""
    nm = nm or Names(c, env)
    for cred in nm.items("credential"):
        if name in (cred["name"], cred["id"]):
            return str(cred["id"])
    return nm.resolve("credential", name)


@cred_app.command("create")
def cred_create(name: str, username_variable: str = typer.Option(..., "--username", help="Text variable."),
                password_variable: str = typer.Option(..., "--password", help="Secret variable."),
                description: Optional[str] = None, solution: Optional[str] = None,
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body = {"name": name, "description": description, "username_variable": username_variable,
            "password_variable": password_variable, **({"solution": solution} if solution else {})}
    with calling() as c:
        show(c.post(f"/environments/{environment(env)}/credentials", body), as_json,
             ["id", "name", "description", "username_variable", "password_variable", "owner", "my_role", "status"],
             nm=names(c, env))


@cred_app.command("list")
def cred_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(f"/environments/{environment(env)}/credentials"), as_json,
             ["id", "name", "description", "owner", "my_role", "status"], nm=names(c, env))


@cred_app.command("show")
def cred_show(name: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        e, nm = environment(env), names(c, env)
        show(c.get(f"/environments/{e}/credentials/{credential_id(c, e, name, nm)}"), as_json, nm=nm)


@cred_app.command("update")
def cred_update(name: str, new_name: Optional[str] = typer.Option(None, "--name"),
                description: Optional[str] = None,
                allow_flow: list[str] = typer.Option([], help="Only these desktop flows may run with it "
                                                              "(repeatable)."),
                any_flow: bool = typer.Option(False, help="Any desktop flow may run with it again."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body: dict[str, object] = {k: v for k, v in (("name", new_name), ("description", description)) if v is not None}
    if allow_flow and any_flow:
        usage("give --allow-flow or --any-flow, not both")
    with calling() as c:
        e, nm = environment(env), names(c, env)
        if allow_flow or any_flow:
            body["allowed_desktop_flows"] = [nm.resolve("desktop_flow", f) for f in allow_flow] or None
        show(c.patch(f"/environments/{e}/credentials/{credential_id(c, e, name, nm)}", body), as_json,
             ["id", "name", "description", "allowed_desktop_flows"], nm=nm)


@cred_app.command("delete")
def cred_delete(name: str, force: bool = typer.Option(False, help="Delete even while connections use it."),
                yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    """Delete a credential; its environment variables stay."""
    confirm(f"delete credential {name}", yes)
    with calling() as c:
        e = environment(env)
        c.delete(f"/environments/{e}/credentials/{credential_id(c, e, name)}", params={"force": force})
        err.print(f"deleted {name}; its environment variables stay")


@cred_app.command("share")
def cred_share(name: str, principal: str = typer.Option(..., "--with", help="A user id or email, or a team."),
               role: str = typer.Option(..., help="co_owner, user or user_share."),
               env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Grant a role on a credential (or change it). Its environment variables become readable too."""
    with calling() as c:
        e = environment(env)
        show(c.put(f"/environments/{e}/credentials/{credential_id(c, e, name)}/shares/{principal}", {"role": role}),
             as_json, SHARE_COLUMNS)


@cred_app.command("unshare")
def cred_unshare(name: str, principal: str = typer.Option(..., "--with", help="A user id or email, or a team."),
                 env: Optional[str] = EnvOpt) -> None:
    """Revoke a share. The environment variables stay readable; connections of that principal stop."""
    with calling() as c:
        e = environment(env)
        c.delete(f"/environments/{e}/credentials/{credential_id(c, e, name)}/shares/{principal}")
        err.print(f"revoked {principal}'s access to {name}")


@cred_app.command("shares")
def cred_shares(name: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Who holds which role on a credential (the owner first)."""
    with calling() as c:
        e = environment(env)
        show(c.all(f"/environments/{e}/credentials/{credential_id(c, e, name)}/shares"), as_json, SHARE_COLUMNS)


@cred_app.command("dependencies")
def cred_dependencies(name: str, every: bool = typer.Option(False, "--all", help="Every connection."),
                      env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Where a credential is used: connections and cloud flows."""
    show_dependencies(f"Credential [bold]{name}[/bold]",
                      f"/environments/{environment(env)}/credentials/{quote(name, safe='')}/dependencies",
                      every, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(cred_app, name="credential")
