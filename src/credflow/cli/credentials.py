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
VERIFICATION_COLUMNS = ["desktop_flow", "connection", "status", "version", "verified_version", "detail", "run"]


def credential_id(c: Client, env: str, name: str, nm: Names | None = None) -> str:
    """The id of a credential named by id, name or a unique prefix of its id (the server answers 404 for none)."""
    nm = nm or Names(c, env)
    for cred in nm.items("credential"):
        if name in (cred["name"], cred["id"]):
            return str(cred["id"])
    return nm.resolve("credential", name)


def _limit(value: str) -> int | None:
    """``--max-concurrent-runs``: a whole number, or none (no limit)."""
    if value.strip().lower() == "none":
        return None
    if not value.strip().isdigit():
        usage(f"--max-concurrent-runs takes a whole number of at least 1, or none (got {value!r})")
    return int(value)


LIMIT_OPT = typer.Option(None, "--max-concurrent-runs", metavar="N|none",
                         help="How many runs may use it at once (1 for an account that may hold one session); "
                              "none: no limit.")


@cred_app.command("create")
def cred_create(name: str, username_variable: str = typer.Option(..., "--username", help="Text variable."),
                password_variable: str = typer.Option(..., "--password", help="Secret variable."),
                description: Optional[str] = None, solution: Optional[str] = None,
                max_concurrent_runs: Optional[str] = LIMIT_OPT,
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body: dict[str, object] = {"name": name, "description": description, "username_variable": username_variable,
                               "password_variable": password_variable, **({"solution": solution} if solution else {})}
    if max_concurrent_runs is not None:
        body["max_concurrent_runs"] = _limit(max_concurrent_runs)
    with calling() as c:
        show(c.post(f"/environments/{environment(env)}/credentials", body), as_json,
             ["id", "name", "description", "username_variable", "password_variable", "owner", "my_role", "status",
              "max_concurrent_runs"],
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
                max_concurrent_runs: Optional[str] = LIMIT_OPT,
                verify_with: tuple[str, str] = typer.Option(
                    ("", ""), "--verify-with", metavar="FLOW CONNECTION",
                    help="A new password runs FLOW on CONNECTION (one of this credential's) first; connections "
                         "move to it only when that run exits 0."),
                no_verification: bool = typer.Option(False, "--no-verification",
                                                     help="New passwords reach connections at once again."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body: dict[str, object] = {k: v for k, v in (("name", new_name), ("description", description)) if v is not None}
    if max_concurrent_runs is not None:
        body["max_concurrent_runs"] = _limit(max_concurrent_runs)
    if allow_flow and any_flow:
        usage("give --allow-flow or --any-flow, not both")
    if all(verify_with) and no_verification:
        usage("give --verify-with or --no-verification, not both")
    with calling() as c:
        e, nm = environment(env), names(c, env)
        if allow_flow or any_flow:
            body["allowed_desktop_flows"] = [nm.resolve("desktop_flow", f) for f in allow_flow] or None
        if all(verify_with):
            body["verification"] = {"desktop_flow": nm.resolve("desktop_flow", verify_with[0]),
                                    "connection": nm.resolve("connection", verify_with[1])}
        elif no_verification:
            body["verification"] = None
        got = c.patch(f"/environments/{e}/credentials/{credential_id(c, e, name, nm)}", body)
        show(got, as_json, ["id", "name", "description", "allowed_desktop_flows", "max_concurrent_runs"], nm=nm)
        if not as_json and got.get("verification"):
            show(got["verification"], False, VERIFICATION_COLUMNS, nm=nm)


@cred_app.command("verify")
def cred_verify(name: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Run the credential's verification now with the newest version of its password; connections move to it
    when the run exits 0."""
    with calling() as c:
        e, nm = environment(env), names(c, env)
        show(c.post(f"/environments/{e}/credentials/{credential_id(c, e, name, nm)}/verify"), as_json,
             VERIFICATION_COLUMNS, nm=nm)


@cred_app.command("leases")
def cred_leases(name: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Who holds the credential's leases (its running runs, with their machines) and how many runs wait for one."""
    with calling() as c:
        e, nm = environment(env), names(c, env)
        got = c.get(f"/environments/{e}/credentials/{credential_id(c, e, name, nm)}/leases")
        if as_json:
            show(got, True)
            return
        limit = got["max_concurrent_runs"]
        err.print(f"{len(got['leases'])} lease(s) held of {'no limit' if limit is None else limit}; "
                  f"{got['waiting']} run(s) waiting for one")
        show(got["leases"], False, ["run", "machine_name", "since"], nm=nm)


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
