"""Client commands for machines (and their registration tokens), machine groups, desktop flows, connections,
runs, connection references and cloud flows."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Optional

import typer
from rich.markup import escape

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
    read_secret,
    show,
    show_secret,
    usage,
)
from credflow.client.http import ApiError, Client
from credflow.client.names import Names

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

machine_app = typer.Typer(help="Machines that run desktop flows.", no_args_is_help=True)
registration_app = typer.Typer(help="Registration tokens: how a new machine joins an environment.",
                               no_args_is_help=True)
group_app = typer.Typer(help="Machine groups: a free member takes the next run.", no_args_is_help=True)
flow_app = typer.Typer(help="Desktop flows: the command a machine runs.", no_args_is_help=True)
conn_app = typer.Typer(help="Connections: a machine or group, and a credential or a username and password.",
                       no_args_is_help=True)
run_app = typer.Typer(help="Runs of desktop flows.", no_args_is_help=True)
ref_app = typer.Typer(help="Connection references: the named slots cloud flows use.", no_args_is_help=True)
cloud_app = typer.Typer(help="Cloud flows: manual or scheduled, running desktop flows.", no_args_is_help=True)

MACHINE_COLS = ["id", "name", "status", "last_seen", "groups"]
CONN_COLS = ["id", "name", "target", "credential", "auth", "status", "secret_version"]
RUN_COLS = ["id", "status", "desktop_flow", "connection", "machine", "exit_code", "secret_version", "queued_at"]
RUN_FIELDS = ["id", "status", "reason_detail", "desktop_flow", "connection", "cloud_flow", "machine", "exit_code",
              "secret_version", "timeout_seconds", "queued_at", "started_at", "finished_at", "created_by"]
ACTIVE = ("queued", "running")


def _e(env: Optional[str], path: str) -> str:
    return f"/environments/{environment(env)}{path}"


# --- machines and groups ------------------------------------------------------------------------------------
@registration_app.command("create")
def registration_create(expires_in: Optional[int] = typer.Option(None, help="Seconds the token stays valid."),
                        env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A single-use token for `credflow agent register`; shown only now, whole, on the last line."""
    body = {"expires_in_seconds": expires_in} if expires_in else None
    with calling() as c:
        made = c.post(_e(env, "/machine-registrations"), body)
    if as_json:
        print_json(made)
        return
    show({k: v for k, v in made.items() if k != "registration_token"}, False)
    show_secret("the registration token", made["registration_token"])


machine_app.command("registration-token", hidden=True)(registration_create)  # the old spelling, for one release


@machine_app.command("list")
def machine_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/machines")), as_json, MACHINE_COLS, nm=names(c, env))


@machine_app.command("show")
def machine_show(machine: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A machine: online or not, when last seen, its groups (and its latest runs, when the server gives them)."""
    with calling() as c:
        nm = names(c, env)
        got = c.get(_e(env, f"/machines/{nm.resolve('machine', machine)}"))
        if as_json:
            print_json(got)
            return
        show({k: v for k, v in got.items() if k != "runs"}, False, nm=nm)
        if got.get("runs"):
            err.print("latest runs:")
            show(got["runs"], False, RUN_COLS, nm=nm)


@machine_app.command("delete")
def machine_delete(machine: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    """Delete a machine (system administrators): its token stops working, its queued runs fail."""
    confirm(f"delete machine {machine} (its token stops working, its queued runs fail)", yes)
    with calling() as c:
        c.delete(_e(env, f"/machines/{names(c, env).resolve('machine', machine)}"))
        err.print(f"deleted machine {machine}")


@group_app.command("create")
def group_create(name: str, machine: list[str] = typer.Option([], help="A member (repeatable)."),
                 env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        nm = names(c, env)
        members = [nm.resolve("machine", m) for m in machine]
        show(c.post(_e(env, "/machine-groups"), {"name": name, "machines": members}), as_json,
             ["id", "name", "machines"], nm=nm)


@group_app.command("list")
def group_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/machine-groups")), as_json, ["id", "name", "machines"], nm=names(c, env))


@group_app.command("update")
def group_update(group: str, name: Optional[str] = typer.Option(None, "--name"),
                 machine: Optional[list[str]] = typer.Option(None, help="The members (repeatable; replaces them)."),
                 env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        nm = names(c, env)
        members = None if machine is None else [nm.resolve("machine", m) for m in machine]
        body: dict[str, Any] = {k: v for k, v in (("name", name), ("machines", members)) if v is not None}
        show(c.patch(_e(env, f"/machine-groups/{nm.resolve('machine_group', group)}"), body), as_json,
             ["id", "name", "machines"], nm=nm)


@group_app.command("delete")
def group_delete(group: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    confirm(f"delete machine group {group}", yes)
    with calling() as c:
        c.delete(_e(env, f"/machine-groups/{names(c, env).resolve('machine_group', group)}"))
        err.print(f"deleted machine group {group}")


# --- desktop flows -------------------------------------------------------------------------------------------
@flow_app.command("create")
def flow_create(name: str, command: list[str] = typer.Argument(..., help="The program and its arguments "
                                                                         "(put -- before options of the program)."),
                solution: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A desktop flow; the process gets CREDFLOW_USERNAME and CREDFLOW_PASSWORD in its environment."""
    body: dict[str, Any] = {"name": name, "command": command, **({"solution": solution} if solution else {})}
    with calling() as c:
        show(c.post(_e(env, "/desktop-flows"), body), as_json, ["id", "name", "command", "owner"], nm=names(c, env))


@flow_app.command("list")
def flow_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/desktop-flows")), as_json, ["id", "name", "command", "owner"], nm=names(c, env))


@flow_app.command("delete")
def flow_delete(flow: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    confirm(f"delete desktop flow {flow}", yes)
    with calling() as c:
        c.delete(_e(env, f"/desktop-flows/{names(c, env).resolve('desktop_flow', flow)}"))
        err.print(f"deleted desktop flow {flow}")


# --- connections ---------------------------------------------------------------------------------------------
@conn_app.command("create")
def conn_create(name: str, machine: Optional[str] = typer.Option(None, help="Run on this machine."),
                group: Optional[str] = typer.Option(None, help="Or on a free member of this machine group."),
                credential: Optional[str] = typer.Option(None, help="A credential you may use."),
                username: Optional[str] = typer.Option(None, help="Or a username; the password is read from "
                                                                  "standard input when piped in, else asked for."),
                password_stdin: bool = typer.Option(False, help="Read the password from standard input."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A connection: where its runs go (--machine or --group) and what they sign in with (--credential, or
    --username and a password)."""
    if (machine is None) == (group is None):
        usage("give exactly one of --machine and --group")
    if credential is not None and (username is not None or password_stdin):
        usage("give --credential, or --username (with its password), not both: a connection signs in with one")
    if credential is None and username is None:
        usage("give --credential NAME, or --username USER (the password is then asked for)")
    password = read_secret("password", password_stdin) if username is not None else None
    with calling() as c:
        nm = names(c, env)
        body: dict[str, Any] = {"name": name, "target": {"machine": nm.resolve("machine", machine)} if machine
                                else {"machine_group": nm.resolve("machine_group", group or "")}}
        if credential is not None:
            body["credential"] = nm.resolve("credential", credential)
        else:
            body["username"], body["password"] = username, password
        show(c.post(_e(env, "/connections"), body), as_json, [*CONN_COLS, "owner"], nm=nm)


@conn_app.command("list")
def conn_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/connections")), as_json, [*CONN_COLS, "owner"], nm=names(c, env))


@conn_app.command("show")
def conn_show(connection: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        nm = names(c, env)
        show(c.get(_e(env, f"/connections/{nm.resolve('connection', connection)}")), as_json, nm=nm)


@conn_app.command("delete")
def conn_delete(connection: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    confirm(f"delete connection {connection}", yes)
    with calling() as c:
        c.delete(_e(env, f"/connections/{names(c, env).resolve('connection', connection)}"))
        err.print(f"deleted connection {connection}")


# --- runs --------------------------------------------------------------------------------------------------------
@run_app.command("start")
def run_start(flow: str = typer.Option(..., "--flow", help="Desktop flow id or name."),
              connection: str = typer.Option(..., help="Connection id or name."),
              timeout: Optional[int] = typer.Option(None, help="Seconds the run may wait for a machine and then "
                                                               "run before it fails (default 3 h, at most 24 h); "
                                                               "--wait waits no longer."),
              wait: bool = typer.Option(False, "--wait", help="Wait for the end, saying on stderr what it waits "
                                                             "for; print the log; exit 1 unless it succeeded."),
              env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Queue a run of a desktop flow on a connection."""
    with calling() as c:
        nm = names(c, env)
        body: dict[str, Any] = {"desktop_flow": nm.resolve("desktop_flow", flow),
                                "connection": nm.resolve("connection", connection)}
        if timeout is not None:
            body["timeout_seconds"] = timeout
        run = c.post(_e(env, "/runs"), body)
        if wait:
            run = _wait(c, env, nm, run)
        if as_json:
            print_json(run)
        else:
            if not wait:
                err.print(f"queued run {run['id']}; `credflow run show {run['id']}` shows how it goes")
            _show_run(run, nm, with_log=wait)
        if wait:
            raise typer.Exit(0 if run["status"] == "succeeded" else 1)


def _show_run(run: dict[str, Any], nm: Names, with_log: bool) -> None:
    show(run, False, [f for f in RUN_FIELDS if f in run], nm=nm)
    if with_log:
        err.print("log:")
        print(run.get("log") or "", end="" if (run.get("log") or "").endswith("\n") else "\n", flush=True)


WAIT_GRACE = 15  # seconds past the run's timeout before --wait gives up on the server failing it
NOTE_EVERY = 30  # seconds between reminders that it still waits


def _wait(c: Client, env: Optional[str], nm: Names, run: dict[str, Any]) -> dict[str, Any]:
    """Poll the run until it ends; tell the user (stderr) what it waits for whenever that changes."""
    started = time.monotonic()
    limit = started + int(run.get("timeout_seconds") or 3 * 3600) + WAIT_GRACE
    said, said_at, looked_at, situation = "", 0.0, 0.0, ""
    while run["status"] in ACTIVE:
        now = time.monotonic()
        if not situation or now - looked_at >= 5 or not situation.startswith(run["status"]):
            situation, looked_at = _situation(c, env, nm, run), now
        if situation != said or now - said_at >= NOTE_EVERY:
            err.print(f"{escape(situation)} [dim]({_elapsed(now - started)})[/dim]", soft_wrap=True)
            said, said_at = situation, now
        if now > limit:
            err.print(f"[yellow]stopped waiting[/yellow]: run {run['id']} is still {run['status']}; it goes on "
                      f"without you: `credflow run show {run['id']}`, or `credflow run cancel {run['id']}`")
            break
        time.sleep(1)
        run = c.get(_e(env, f"/runs/{run['id']}"))
    return run


def _situation(c: Client, env: Optional[str], nm: Names, run: dict[str, Any]) -> str:
    if run["status"] == "running":
        return f"running on machine {nm.name('machine', run.get('machine'))}"
    try:
        target = c.get(_e(env, f"/connections/{run['connection']}")).get("target") or {}
        if target.get("machine"):
            m = c.get(_e(env, f"/machines/{target['machine']}"))
            if m.get("status") == "online":
                return f"queued: machine {m['name']} is online and takes it when it is free"
            return (f"queued: machine {m['name']} is offline ({_seen(m)}); is its agent running? "
                    "(`credflow agent run` on it)")
        group = c.get(_e(env, f"/machine-groups/{target.get('machine_group')}"))
    except (ApiError, KeyError, AttributeError):
        return "queued: waiting for a machine to take it"
    members = [m for m in c.all(_e(env, "/machines")) if m["id"] in (group.get("machines") or [])]
    online = [m for m in members if m.get("status") == "online"]
    if not members:
        return (f"queued: machine group {group['name']} has no machines; add one "
                f"(`credflow machine-group update {group['name']} --machine NAME`)")
    if online:
        return f"queued: waiting for a free machine of group {group['name']} ({len(online)} of {len(members)} online)"
    seen = "; ".join(f"{m['name']} {_seen(m)}" for m in members)
    return (f"queued: no machine of group {group['name']} is online ({seen}); are their agents running? "
            "(`credflow agent run` on each)")


def _seen(machine: dict[str, Any]) -> str:
    return f"last seen {_ago(machine['last_seen'])}" if machine.get("last_seen") else "never seen"


def _ago(stamp: str) -> str:
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return f"{_elapsed((datetime.now(UTC) - then).total_seconds())} ago"


def _elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


@run_app.command("list")
def run_list(status: Optional[str] = typer.Option(None, help="queued, running, succeeded, failed or cancelled."),
             connection: Optional[str] = typer.Option(None, help="Runs on this connection."),
             flow: Optional[str] = typer.Option(None, "--flow", help="Runs of this desktop flow."),
             machine: Optional[str] = typer.Option(None, help="Runs this machine took."),
             since: Optional[str] = typer.Option(None, help="Runs queued at or after this time (RFC 3339)."),
             until: Optional[str] = typer.Option(None, help="Runs queued before this time (RFC 3339)."),
             env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Runs, oldest first, filtered in the server."""
    with calling() as c:
        nm = names(c, env)
        params = {"status": status, "since": since, "until": until,
                  "connection": nm.id_of("connection", connection) if connection else None,
                  "desktop_flow": nm.id_of("desktop_flow", flow) if flow else None,
                  "machine": nm.id_of("machine", machine) if machine else None}
        show(c.all(_e(env, "/runs"), **{k: v for k, v in params.items() if v}), as_json, RUN_COLS, nm=nm)


@run_app.command("show")
def run_show(run_id: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A run with its (masked) log."""
    with calling() as c:
        nm = names(c, env)
        run = c.get(_e(env, f"/runs/{nm.resolve('run', run_id)}"))
        if as_json:
            print_json(run)
        else:
            _show_run(run, nm, with_log=True)


@run_app.command("cancel")
def run_cancel(run_id: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        nm = names(c, env)
        run = c.post(_e(env, f"/runs/{nm.resolve('run', run_id)}/cancel"))
        if as_json:
            print_json(run)
        else:
            _show_run(run, nm, with_log=False)


# --- connection references and cloud flows -----------------------------------------------------------------------
@ref_app.command("create")
def ref_create(name: str, connection: Optional[str] = None, env: Optional[str] = EnvOpt,
               as_json: bool = JsonOpt) -> None:
    with calling() as c:
        nm = names(c, env)
        conn = nm.resolve("connection", connection) if connection else None
        show(c.post(_e(env, "/connection-references"), {"name": name, "connection": conn}), as_json, nm=nm)


@ref_app.command("list")
def ref_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/connection-references")), as_json, ["id", "name", "connection"], nm=names(c, env))


@ref_app.command("bind")
def ref_bind(name: str, connection: Optional[str] = typer.Option(None, help="Omit to unbind."),
             env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        nm = names(c, env)
        conn = nm.resolve("connection", connection) if connection else None
        show(c.patch(_e(env, f"/connection-references/{nm.resolve('connection_reference', name)}"),
                     {"connection": conn}), as_json, nm=nm)


@cloud_app.command("create")
def cloud_create(name: str, action: list[str] = typer.Option(..., help="DESKTOP_FLOW=CONNECTION_REFERENCE "
                                                                       "(repeatable, run in order)."),
                 cron: Optional[str] = typer.Option(None, help="Run on this cron schedule (UTC); else manual."),
                 solution: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    actions = []
    for a in action:
        flow, sep, ref = a.partition("=")
        if not sep:
            usage(f"--action is DESKTOP_FLOW=CONNECTION_REFERENCE, not {a!r}")
        actions.append({"type": "run_desktop_flow", "desktop_flow": flow, "connection_reference": ref})
    body: dict[str, Any] = {"name": name, "actions": actions,
                            "trigger": {"type": "schedule", "cron": cron} if cron else {"type": "manual"}}
    if solution:
        body["solution"] = solution
    with calling() as c:
        show(c.post(_e(env, "/cloud-flows"), body), as_json, ["id", "name", "trigger", "next_fire_at", "owner"],
             nm=names(c, env))


@cloud_app.command("list")
def cloud_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/cloud-flows")), as_json, ["id", "name", "trigger", "next_fire_at", "owner"],
             nm=names(c, env))


@cloud_app.command("run")
def cloud_run(name: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Queue one run per action now."""
    with calling() as c:
        nm = names(c, env)
        show(c.post(_e(env, f"/cloud-flows/{nm.resolve('cloud_flow', name)}/run"))["runs"], as_json, RUN_COLS,
             nm=nm)


@cloud_app.command("delete")
def cloud_delete(name: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    confirm(f"delete cloud flow {name}", yes)
    with calling() as c:
        c.delete(_e(env, f"/cloud-flows/{names(c, env).resolve('cloud_flow', name)}"))
        err.print(f"deleted cloud flow {name}")


def register(app: typer.Typer) -> None:
    for sub, name in ((machine_app, "machine"), (registration_app, "machine-registration"),
                      (group_app, "machine-group"), (flow_app, "desktop-flow"), (conn_app, "connection"),
                      (run_app, "run"), (ref_app, "connection-reference"), (cloud_app, "cloud-flow")):
        app.add_typer(sub, name=name)
