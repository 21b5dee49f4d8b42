"""Client commands for signing in, users, environments, secret stores, secrets and environment variables."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional
from urllib.parse import quote

import typer
from rich.markup import escape

from credflow.cli import identity
from credflow.cli.common import (
    EnvOpt,
    JsonOpt,
    YesOpt,
    calling,
    confirm,
    environment,
    err,
    fail,
    names,
    print_json,
    read_secret,
    save_login,
    show,
    show_secret,
    usage,
)
from credflow.cli.dependencies import show_dependencies
from credflow.client.http import ApiError, Client

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

user_app = typer.Typer(help="Users and their environment roles.", no_args_is_help=True)
env_app = typer.Typer(help="Environments.", no_args_is_help=True)
store_app = typer.Typer(help="Secret stores (vaults).", no_args_is_help=True)
secret_app = typer.Typer(help="Secrets of builtin stores (values are written, never read back).",
                         no_args_is_help=True)
var_app = typer.Typer(help="Environment variables: text values and secret references.", no_args_is_help=True)


def login(server: str = typer.Option(..., envvar="CREDFLOW_SERVER", help="credflow server URL."),
          token: Optional[str] = typer.Option(None, help="API token. Better left out: then it is asked for "
                                                         "(hidden), or read from standard input when piped in."),
          env: Optional[str] = EnvOpt,
          sso: bool = typer.Option(False, "--sso", help="Sign in through the identity provider instead (device "
                                                        "code): credflow keeps a token of its own for you.")) -> None:
    """Check the token and keep server and token in a 0600 config file."""
    if sso:
        identity.login_sso(server, env)
        return
    if token is None:
        token = (sys.stdin.readline().strip() if not sys.stdin.isatty()
                 else typer.prompt("token", hide_input=True, err=True).strip())
        if not token:
            usage("no token given: paste it at the prompt, or pipe it in")
    c = Client(server, token)
    try:
        me = c.get("/me")
    except ApiError as exc:
        fail(f"login failed: {exc.problem.get('detail')} ({exc.status} {exc.problem.get('code', '')})")
    finally:
        c.close()
    if not isinstance(me, dict):
        fail(f"{server} did not answer as a credflow server does; check the URL")
    path = save_login(server, token, env)
    err.print(f"signed in as {me.get('name')} ({me.get('email', me.get('kind'))}); saved to {path}")


USER_FIELDS = ["id", "name", "email", "environment_roles", "organization_admin"]


@user_app.command("create")
def user_create(name: str, email: str,
                role: list[str] = typer.Option([], help="ENV=ROLE, e.g. default=environment_maker (repeatable)."),
                organization_admin: bool = typer.Option(False, help="Make the user an organization administrator "
                                                                    "(organization administrators only)."),
                as_json: bool = JsonOpt) -> None:
    """Create a user; the token is shown only now, whole, on the last line."""
    roles: dict[str, str] = {}
    for r in role:
        env_name, sep, role_name = r.partition("=")
        if not sep or not env_name or not role_name:
            usage(f"--role is ENV=ROLE (e.g. default=environment_maker), not {r!r}")
        roles[env_name] = role_name
    with calling() as c:
        made = c.post("/users", {"name": name, "email": email, "environment_roles": roles,
                                 "organization_admin": organization_admin})
        if as_json:
            print_json(made)
            return
        show(made, False, USER_FIELDS, nm=names(c, None))
    show_secret(f"{made['name']}'s API token", made["token"])


@user_app.command("list")
def user_list(as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all("/users"), as_json, USER_FIELDS[:4], nm=names(c, None))


@env_app.command("create")
def env_create(name: str, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.post("/environments", {"name": name}), as_json, ["id", "name"])


@env_app.command("list")
def env_list(as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all("/environments"), as_json, ["id", "name", "created_at"])


STORE_FIELDS = ["id", "name", "kind", "vault_url"]


def _config(text: str) -> dict[str, Any]:
    """``--config``: a JSON object, '-' for standard input."""
    try:
        cfg = json.loads(sys.stdin.read() if text == "-" else text)
    except ValueError as exc:
        usage(f"--config is not valid JSON ({exc}); give an object such as '{{\"address\": \"https://...\"}}'")
    if not isinstance(cfg, dict):
        usage("--config is a JSON object, such as '{\"address\": \"https://...\"}'")
    return cfg


CheckOpt = typer.Option(True, help="Run the prerequisite check afterwards (`credflow store check`).")


@store_app.command("create")
def store_create(name: str, kind: str = typer.Option("builtin", help="builtin, hashicorp-vault, azure-keyvault, "
                                                     "aws-secretsmanager (`credflow store kinds` lists them)."),
                 vault_url: Optional[str] = typer.Option(None, help="What events name this vault by."),
                 config: str = typer.Option("{}", help="Kind-specific config as JSON ('-' reads stdin)."),
                 check: bool = CheckOpt, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Register a secret store (system administrators), then check its prerequisites."""
    body = {"name": name, "kind": kind, "vault_url": vault_url, "config": _config(config)}
    with calling() as c:
        made = c.post(f"/environments/{environment(env)}/secret-stores", body)
        _checked(c, env, made, check, as_json, "created")


@store_app.command("update")
def store_update(store: str, name: Optional[str] = typer.Option(None, "--name", help="A new name."),
                 vault_url: Optional[str] = typer.Option(None, help="What events name this vault by."),
                 config: Optional[str] = typer.Option(None, help="Config fields to change, as JSON ('-' reads "
                                                                 "stdin); fields left out keep their value, null "
                                                                 "clears one."),
                 check: bool = CheckOpt, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Change a secret store's name, vault URL or config (its creator or system administrators), then check it."""
    body: dict[str, Any] = {k: v for k, v in (("name", name), ("vault_url", vault_url)) if v is not None}
    if config is not None:
        body["config"] = _config(config)
    if not body:
        usage("nothing to change: give --name, --vault-url or --config")
    with calling() as c:
        ref = names(c, env).resolve("store", store)
        got = c.patch(f"/environments/{environment(env)}/secret-stores/{ref}", body)
        _checked(c, env, got, check, as_json, "changed")


@store_app.command("delete")
def store_delete(store: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    """Delete a secret store (refused while environment variables reference it)."""
    confirm(f"delete secret store {store}", yes)
    with calling() as c:
        c.delete(f"/environments/{environment(env)}/secret-stores/{names(c, env).resolve('store', store)}")
        err.print(f"deleted secret store {store}")


def _checked(c: Client, env: Optional[str], store: dict[str, Any], check: bool, as_json: bool, done: str) -> None:
    """Show a store just made or changed and, unless ``check`` is off, its prerequisite check."""
    report: dict[str, Any] | None = None
    problem = None
    if check:
        try:
            report = c.post(f"/environments/{environment(env)}/secret-stores/{store['id']}/check")
        except ApiError as exc:
            problem = f"{exc.problem.get('detail')} ({exc.status} {exc.problem.get('code', '')})"
    if as_json:
        print_json({**store, **({"check": report} if report is not None else {})})
    else:
        show(store, False, STORE_FIELDS)
        if report is not None:
            err.print("prerequisite check:")
            show(report["checks"], False, ["check", "ok", "detail"])
    name = escape(store["name"])
    if problem is not None:
        err.print(f"[yellow]the store {name} was {done}, but its check could not run[/yellow]: {escape(problem)}; "
                  f"run `credflow store check {name}` later")
    elif report is not None and not report["ok"]:
        failed = ", ".join(ch["check"] for ch in report["checks"] if not ch["ok"])
        err.print(f"[red]the store {name} was {done}, but its check fails[/red] ({failed}): each failing check "
                  f"above says what to fix. Fix the vault, or the store with `credflow store update {name} "
                  f"--config JSON`, then run `credflow store check {name}`; or delete it: "
                  f"`credflow store delete {name}`.")


store_app.command("add", hidden=True)(store_create)  # the old spelling, kept for one release


@store_app.command("list")
def store_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(f"/environments/{environment(env)}/secret-stores"), as_json, STORE_FIELDS)


@store_app.command("allow")
def store_allow(store: str, principal: str, deny: bool = typer.Option(False, help="Take the permission away."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Say who may reference secrets of a store in environment variables."""
    with calling() as c:
        nm = names(c, env)
        store = nm.resolve("store", store)
        show(c.post(f"/environments/{environment(env)}/secret-stores/{store}/access",
                    {"principal": principal, "allowed": not deny}), as_json, nm=nm)


@store_app.command("check")
def store_check(store: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """The prerequisite report: reachable, service can read, you may use it, same tenant; each with its fix.
    Exit 1 when a check fails."""
    with calling() as c:
        store = names(c, env).resolve("store", store)
        report = c.post(f"/environments/{environment(env)}/secret-stores/{store}/check")
        show(report if as_json else report["checks"], as_json, ["check", "ok", "detail"])
        if not report["ok"]:
            raise typer.Exit(1)


@store_app.command("kinds")
def store_kinds(as_json: bool = JsonOpt) -> None:
    """The kinds of secret store this server can open; for one it cannot, why and the command that fixes it."""
    with calling() as c:
        show(c.all("/secret-store-kinds"), as_json, ["kind", "viable", "detail", "install"])


@secret_app.command("put")
def secret_put(store: str, name: str,
               stdin: bool = typer.Option(False, "--stdin", help="Read the value from standard input (the "
                                                                 "default when it is piped in)."),
               env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Write a new version of a builtin secret. The value is read from standard input when it is piped in,
    else asked for (hidden, twice)."""
    value = read_secret("value", stdin)
    with calling() as c:
        store = names(c, env).resolve("store", store)
        show(c.put(f"/environments/{environment(env)}/secret-stores/{store}/secrets/{name}",
                   {"value": value}), as_json)


@secret_app.command("list")
def secret_list(store: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        store = names(c, env).resolve("store", store)
        show(c.all(f"/environments/{environment(env)}/secret-stores/{store}/secrets"), as_json, ["name", "version"])


def _var_row(v: dict) -> dict:  # type: ignore[type-arg]
    ref = v.get("secret_reference") or {}
    shown = v.get("value") if v["type"] == "text" else f"{ref.get('store_name')}:{ref.get('name')}" + (
        f"@{ref['version']}" if ref.get("version") else "")
    return {**v, "value / reference": shown}


VAR_FIELDS = ["id", "schema_name", "type", "value / reference"]


@var_app.command("create")
def var_create(schema_name: str, type_: str = typer.Option(..., "--type", help="text or secret"),
               value: Optional[str] = typer.Option(None, help="The value of a text variable."),
               store: Optional[str] = typer.Option(None, help="The store of a secret variable."),
               secret: Optional[str] = typer.Option(None, help="The secret's name in the store (NAME or NAME#FIELD)."),
               version: Optional[str] = typer.Option(None, help="Pin a secret version."),
               azure_id: Optional[str] = typer.Option(None, help="Or the Azure resource id of the secret."),
               display_name: Optional[str] = None, solution: Optional[str] = None,
               env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body: dict = {"schema_name": schema_name, "type": type_, "display_name": display_name}  # type: ignore[type-arg]
    if type_ == "text":
        body["value"] = value
    else:
        body["secret_reference"] = azure_id or {"store": store, "name": secret,
                                                **({"version": version} if version else {})}
    if solution:
        body["solution"] = solution
    with calling() as c:
        made = c.post(f"/environments/{environment(env)}/environment-variables", body)
        show(made if as_json else _var_row(made), as_json, [*VAR_FIELDS, "owner"], nm=names(c, env))


@var_app.command("list")
def var_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        found = c.all(f"/environments/{environment(env)}/environment-variables")
        show(found if as_json else [_var_row(v) for v in found], as_json,
             ["id", "schema_name", "display_name", "type", "value / reference", "owner"], nm=names(c, env))


@var_app.command("update")
def var_update(name: str, value: Optional[str] = None, display_name: Optional[str] = None,
               store: Optional[str] = None, secret: Optional[str] = None, version: Optional[str] = None,
               env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body: dict = {}  # type: ignore[type-arg]
    if value is not None:
        body["value"] = value
    if display_name is not None:
        body["display_name"] = display_name
    if secret is not None:
        body["secret_reference"] = {"store": store, "name": secret, **({"version": version} if version else {})}
    with calling() as c:
        nm = names(c, env)
        name = nm.resolve("variable", name)
        got = c.patch(f"/environments/{environment(env)}/environment-variables/{name}", body)
        show(got if as_json else _var_row(got), as_json, [*VAR_FIELDS, "owner"], nm=nm)


@var_app.command("delete")
def var_delete(name: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    """Delete an environment variable (refused while a credential uses it)."""
    confirm(f"delete environment variable {name}", yes)
    with calling() as c:
        ref = names(c, env).resolve("variable", name)
        c.delete(f"/environments/{environment(env)}/environment-variables/{ref}")
        err.print(f"deleted {name}")


@var_app.command("dependencies")
def var_dependencies(name: str, every: bool = typer.Option(False, "--all", help="Every connection."),
                     env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Where an environment variable is used: credentials, their connections, and cloud flows."""
    show_dependencies(f"Environment variable [bold]{name}[/bold]",
                      f"/environments/{environment(env)}/environment-variables/{quote(name, safe='')}/dependencies",
                      every, as_json)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.add_typer(user_app, name="user")
    app.add_typer(env_app, name="env")
    app.add_typer(store_app, name="store")
    app.add_typer(secret_app, name="secret")
    app.add_typer(var_app, name="variable")
