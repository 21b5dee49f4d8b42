"""Client commands for machines (and their registration tokens), machine groups, desktop flows, connections,
runs, connection references and cloud flows."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

import typer

from credflow.cli.common import EnvOpt, JsonOpt, calling, environment, err, out, show

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


def _e(env: Optional[str], path: str) -> str:
    return f"/environments/{environment(env)}{path}"


# --- machines and groups ------------------------------------------------------------------------------------
@registration_app.command("create")
def registration_create(expires_in: Optional[int] = typer.Option(None, help="Seconds the token stays valid."),
                        env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A single-use token for `credflow agent register`; shown only now."""
    body = {"expires_in_seconds": expires_in} if expires_in else None
    with calling() as c:
        show(c.post(_e(env, "/machine-registrations"), body), as_json, ["registration_token", "expires_at"])


machine_app.command("registration-token", hidden=True)(registration_create)  # the old spelling, for one release


@machine_app.command("list")
def machine_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/machines")), as_json, MACHINE_COLS)


@machine_app.command("show")
def machine_show(machine: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.get(_e(env, f"/machines/{machine}")), as_json)


@machine_app.command("delete")
def machine_delete(machine: str, env: Optional[str] = EnvOpt) -> None:
    """Delete a machine (system administrators): its token stops working, its queued runs fail."""
    with calling() as c:
        c.delete(_e(env, f"/machines/{machine}"))
        err.print(f"deleted machine {machine}")


@group_app.command("create")
def group_create(name: str, machine: list[str] = typer.Option([], help="A member (repeatable)."),
                 env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.post(_e(env, "/machine-groups"), {"name": name, "machines": machine}), as_json,
             ["id", "name", "machines"])


@group_app.command("list")
def group_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/machine-groups")), as_json, ["id", "name", "machines"])


@group_app.command("update")
def group_update(group: str, name: Optional[str] = typer.Option(None, "--name"),
                 machine: Optional[list[str]] = typer.Option(None, help="The members (repeatable; replaces them)."),
                 env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body: dict[str, Any] = {k: v for k, v in (("name", name), ("machines", machine)) if v is not None}
    with calling() as c:
        show(c.patch(_e(env, f"/machine-groups/{group}"), body), as_json, ["id", "name", "machines"])


@group_app.command("delete")
def group_delete(group: str, env: Optional[str] = EnvOpt) -> None:
    with calling() as c:
        c.delete(_e(env, f"/machine-groups/{group}"))
        err.print(f"deleted machine group {group}")


# --- desktop flows -------------------------------------------------------------------------------------------
@flow_app.command("create")
def flow_create(name: str, command: list[str] = typer.Argument(..., help="The program and its arguments "
                                                                         "(put -- before options of the program)."),
                solution: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A desktop flow; the process gets CREDFLOW_USERNAME and CREDFLOW_PASSWORD in its environment."""
    body: dict[str, Any] = {"name": name, "command": command, **({"solution": solution} if solution else {})}
    with calling() as c:
        show(c.post(_e(env, "/desktop-flows"), body), as_json, ["id", "name", "command"])


@flow_app.command("list")
def flow_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/desktop-flows")), as_json, ["id", "name", "command"])


@flow_app.command("delete")
def flow_delete(flow: str, env: Optional[str] = EnvOpt) -> None:
    with calling() as c:
        c.delete(_e(env, f"/desktop-flows/{flow}"))
        err.print(f"deleted desktop flow {flow}")


# --- connections ---------------------------------------------------------------------------------------------
@conn_app.command("create")
def conn_create(name: str, machine: Optional[str] = typer.Option(None, help="Run on this machine."),
                group: Optional[str] = typer.Option(None, help="Or on a free member of this machine group."),
                credential: Optional[str] = typer.Option(None, help="A credential you may use."),
                username: Optional[str] = typer.Option(None, help="Or a username (the password is prompted)."),
                password_stdin: bool = typer.Option(False, help="Read the password from standard input."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    if (machine is None) == (group is None):
        err.print("[red]give exactly one of --machine and --group[/red]")
        raise typer.Exit(2)
    body: dict[str, Any] = {"name": name, "target": {"machine": machine} if machine else {"machine_group": group}}
    if credential is not None:
        body["credential"] = credential
    elif username is not None:
        body["username"] = username
        body["password"] = (sys.stdin.read().rstrip("\n") if password_stdin
                            else typer.prompt("password", hide_input=True, confirmation_prompt=True))
    with calling() as c:
        show(c.post(_e(env, "/connections"), body), as_json, CONN_COLS)


@conn_app.command("list")
def conn_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/connections")), as_json, CONN_COLS)


@conn_app.command("show")
def conn_show(connection: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.get(_e(env, f"/connections/{connection}")), as_json)


@conn_app.command("delete")
def conn_delete(connection: str, env: Optional[str] = EnvOpt) -> None:
    with calling() as c:
        c.delete(_e(env, f"/connections/{connection}"))
        err.print(f"deleted connection {connection}")


# --- runs --------------------------------------------------------------------------------------------------------
@run_app.command("start")
def run_start(flow: str = typer.Option(..., "--flow", help="Desktop flow id or name."),
              connection: str = typer.Option(..., help="Connection id or name."),
              timeout: Optional[int] = typer.Option(None, help="Seconds (default 3 h, at most 24 h)."),
              wait: bool = typer.Option(False, "--wait", help="Wait for the end; print the log; exit 1 on failure."),
              env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    body: dict[str, Any] = {"desktop_flow": flow, "connection": connection}
    if timeout is not None:
        body["timeout_seconds"] = timeout
    with calling() as c:
        run = c.post(_e(env, "/runs"), body)
        while wait and run["status"] in ("queued", "running"):
            time.sleep(1)
            run = c.get(_e(env, f"/runs/{run['id']}"))
        show(run, as_json, RUN_COLS)
        if wait:
            out.print(run.get("log") or "", markup=False, highlight=False)
            raise typer.Exit(0 if run["status"] == "succeeded" else 1)


@run_app.command("list")
def run_list(status: Optional[str] = None, connection: Optional[str] = None,
             env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    params = {k: v for k, v in (("status", status), ("connection", connection)) if v}
    with calling() as c:
        show(c.all(_e(env, "/runs"), **params), as_json, RUN_COLS)


@run_app.command("show")
def run_show(run_id: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """A run with its (masked) log."""
    with calling() as c:
        run = c.get(_e(env, f"/runs/{run_id}"))
        show(run, as_json, [*RUN_COLS, "started_at", "finished_at"])
        if not as_json:
            out.print(run.get("log") or "", markup=False, highlight=False)


@run_app.command("cancel")
def run_cancel(run_id: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.post(_e(env, f"/runs/{run_id}/cancel")), as_json, RUN_COLS)


# --- connection references and cloud flows -----------------------------------------------------------------------
@ref_app.command("create")
def ref_create(name: str, connection: Optional[str] = None, env: Optional[str] = EnvOpt,
               as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.post(_e(env, "/connection-references"), {"name": name, "connection": connection}), as_json)


@ref_app.command("list")
def ref_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/connection-references")), as_json, ["id", "name", "connection"])


@ref_app.command("bind")
def ref_bind(name: str, connection: Optional[str] = typer.Option(None, help="Omit to unbind."),
             env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.patch(_e(env, f"/connection-references/{name}"), {"connection": connection}), as_json)


@cloud_app.command("create")
def cloud_create(name: str, action: list[str] = typer.Option(..., help="DESKTOP_FLOW=CONNECTION_REFERENCE "
                                                                       "(repeatable, run in order)."),
                 cron: Optional[str] = typer.Option(None, help="Run on this cron schedule (UTC); else manual."),
                 solution: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    actions = []
    for a in action:
        flow, sep, ref = a.partition("=")
        if not sep:
            err.print(f"[red]--action is DESKTOP_FLOW=CONNECTION_REFERENCE, not {a!r}[/red]")
            raise typer.Exit(2)
        actions.append({"type": "run_desktop_flow", "desktop_flow": flow, "connection_reference": ref})
    body: dict[str, Any] = {"name": name, "actions": actions,
                            "trigger": {"type": "schedule", "cron": cron} if cron else {"type": "manual"}}
    if solution:
        body["solution"] = solution
    with calling() as c:
        show(c.post(_e(env, "/cloud-flows"), body), as_json, ["id", "name", "trigger", "next_fire_at"])


@cloud_app.command("list")
def cloud_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(_e(env, "/cloud-flows")), as_json, ["id", "name", "trigger", "next_fire_at"])


@cloud_app.command("run")
def cloud_run(name: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Queue one run per action now."""
    with calling() as c:
        show(c.post(_e(env, f"/cloud-flows/{name}/run"))["runs"], as_json, RUN_COLS)


@cloud_app.command("delete")
def cloud_delete(name: str, env: Optional[str] = EnvOpt) -> None:
    with calling() as c:
        c.delete(_e(env, f"/cloud-flows/{name}"))
        err.print(f"deleted cloud flow {name}")


def register(app: typer.Typer) -> None:
    for sub, name in ((machine_app, "machine"), (registration_app, "machine-registration"),
                      (group_app, "machine-group"), (flow_app, "desktop-flow"), (conn_app, "connection"),
                      (run_app, "run"), (ref_app, "connection-reference"), (cloud_app, "cloud-flow")):
        app.add_typer(sub, name=name)
