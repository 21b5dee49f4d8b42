"""Client commands for rotation: the seed's notify action, what rotation holds (versions, freshness, pending
events), and event keys for the Event Grid webhook."""

from __future__ import annotations

from typing import Optional

import typer

from credflow.cli.common import (
    EnvOpt,
    JsonOpt,
    YesOpt,
    calling,
    confirm,
    environment,
    err,
    names,
    print_json,
    show,
    show_secret,
)

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

key_app = typer.Typer(help="Event keys: what authenticates the Event Grid webhook (several may be valid).",
                      no_args_is_help=True)
rotation_app = typer.Typer(help="Rotation: tell credflow a secret changed; the versions it holds, their "
                                "freshness, pending events.", no_args_is_help=True)


@rotation_app.command("notify")
def notify(keyvault_url: str = typer.Argument(..., metavar="KEYVAULT_URL",
                                              help="The vault URL, or the Event Grid topic (an Azure resource id)."),
           secret_name: str = typer.Argument(..., metavar="SECRET_NAME", help="The secret's name in that vault."),
           env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """NotifyEnvironmentVariableSecretChange: a secret changed in a vault; refresh the connections using it
    (all of them for a system administrator, your own otherwise)."""
    with calling() as c:
        got = c.post(f"/environments/{environment(env)}/actions/NotifyEnvironmentVariableSecretChange",
                     {"KeyVaultUrl": keyvault_url, "SecretName": secret_name})
    if as_json:
        print_json(got)
        return
    count = got.get("connections") if isinstance(got, dict) else None
    if count is None:
        err.print("accepted: the connections using that secret will get its current version")
    elif count == 0:
        err.print("accepted, but no connection follows that secret (none of yours, unless you are a system "
                  "administrator): nothing to refresh")
    else:
        err.print(f"accepted: {count} connection{'s' if count != 1 else ''} will get the secret's current version")


@key_app.command("create")
def key_create(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Make an event key. It is shown only now: put it in the Event Grid subscription's URL as ?key=..."""
    with calling() as c:
        made = c.post(f"/environments/{environment(env)}/event-keys")
    if as_json:
        print_json(made)
        return
    show({k: v for k, v in made.items() if k != "key"}, False)
    err.print("the webhook is POST <server>/events/eventgrid?key=<key> (or the aeg-sas-key header)")
    show_secret("the event key", made["key"])


@key_app.command("list")
def key_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(f"/environments/{environment(env)}/event-keys"), as_json, ["id", "created_at"])


@key_app.command("delete")
def key_delete(key_id: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    """Delete an event key: deliveries carrying it are refused from now on."""
    confirm(f"delete event key {key_id} (deliveries carrying it are refused from now on)", yes)
    with calling() as c:
        c.delete(f"/environments/{environment(env)}/event-keys/{names(c, env).resolve('event_key', key_id)}")
    err.print(f"event key {key_id} deleted")


@rotation_app.command("status")
def rotation_status(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Every secret credflow follows: current version, connections, when last confirmed, since when stale."""
    with calling() as c:
        got = c.get(f"/environments/{environment(env)}/rotation")
    if as_json:
        print_json(got)
        return
    err.print(f"pending events: {got['pending_events']}")
    show(got["secrets"], False, ["store_name", "name", "current_version", "connections", "secret_checked_at",
                                 "secret_stale_since", "secret_error"])


def register(app: typer.Typer) -> None:
    app.add_typer(rotation_app, name="rotation")
    app.command("notify", hidden=True)(notify)  # the old spelling, kept for one release
    app.add_typer(key_app, name="event-key")
