"""``credflow agent register`` and ``credflow agent run``: this computer as a credflow machine."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import NoReturn, Optional

import typer
from rich.markup import escape

from credflow.cli.common import JsonOpt, err, print_json

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

agent_app = typer.Typer(help="Run this computer as a credflow machine.", no_args_is_help=True)
StateDirOpt = typer.Option(None, "--state-dir", help="Where the machine's token and private key live "
                                                    "(default ~/.local/state/credflow-agent).")


def _dir(state_dir: Optional[Path]) -> Path:
    from credflow.agent.state import default_state_dir

    return state_dir or default_state_dir()


@agent_app.command("register")
def register_machine(server: str = typer.Option(..., help="credflow server URL."),
             registration_token: str = typer.Option(..., envvar="CREDFLOW_REGISTRATION_TOKEN",
                                                    help="A single-use registration token."),
             name: str = typer.Option(..., help="This machine's name in its environment."),
             state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt) -> None:
    """Make a key pair, register this machine, and keep its token (files 0600)."""
    from credflow.agent.register import register as do_register
    from credflow.agent.state import StateError
    from credflow.client.http import ApiError

    where = _dir(state_dir)
    try:
        st = do_register(server, registration_token, name, where)
    except StateError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None
    except ApiError as exc:
        err.print(f"[red]registration refused ({exc.status} {exc.problem.get('code', '')})[/red]: "
                  f"{exc.problem.get('detail', '')}")
        raise typer.Exit(1) from None
    if as_json:
        print_json({"machine": st.machine_id, "name": st.name, "server": server, "state_dir": str(where)})
        return
    err.print(f"registered machine {st.name} ({st.machine_id}); state in {where}")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@agent_app.command("run")
def run_agent(state_dir: Optional[Path] = StateDirOpt,
        wait: float = typer.Option(50.0, help="Seconds each long-poll claim waits for a job."),
        heartbeat_seconds: float = typer.Option(10.0, help="Seconds between heartbeats."),
        run_as: Optional[str] = typer.Option(
            None, "--run-as", metavar="USER",
            help="Run each flow as this unprivileged OS user (name or uid), in a fresh directory and with a clean "
                 "environment, so it cannot read the machine's token and key. The agent must run as root.")) -> None:
    """Send heartbeats, wait for jobs, run them one at a time and report their results."""
    from credflow.agent import executor
    from credflow.agent.state import StateError, load, make_private, owned_by
    from credflow.agent.worker import Agent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log = logging.getLogger("credflow.agent")
    where = _dir(state_dir)
    user = None
    if run_as is not None:
        try:
            user = executor.resolve_run_as(run_as)
        except executor.RunAsError as exc:
            _fail(str(exc))
        missing = executor.missing_privileges()
        if missing and os.geteuid() == 0:
            _fail(f"--run-as needs an agent that can switch to another user, but this one runs as root without "
                  f"{', '.join(missing)}")
        if missing:
            _fail(f"--run-as needs an agent that can switch to another user: run it as root (or give it "
                  f"{', '.join(missing)}); it runs as uid {os.geteuid()}")
    try:
        st = load(where)
    except StateError as exc:
        _fail(str(exc))
    try:
        for path, old, new in make_private(where):
            log.warning("%s was open to others (mode %o); made it %o", path, old, new)
    except OSError as exc:
        _fail(f"{where} could not be made private to this agent ({type(exc).__name__}); the machine's key and "
              "token in it must not be readable by others")
    if user is not None:
        theirs = owned_by(where, user.uid)
        if theirs:
            _fail(f"{theirs[0]} belongs to {user.name}, the user flows run as, who could read the machine's key "
                  "and token whatever its mode; give the state directory to the agent's user (chown)")
        log.info("flows run as user %s (uid %s) in a fresh directory each, with a clean environment", user.name,
                 user.uid)
    else:
        log.warning("flows run as this agent's own user and can read the machine's key and token in %s; "
                    "use --run-as USER to run them as an unprivileged user", where)
    agent = Agent(st, wait=wait, heartbeat_seconds=heartbeat_seconds, run_as=user, state_dir=where)
    signal.signal(signal.SIGTERM, _interrupt)
    code = 0
    try:
        code = agent.run()
    except KeyboardInterrupt:
        err.print("agent stopped")
    finally:
        agent.close()
    raise typer.Exit(code)


@agent_app.command("rotate-token")
def rotate_agent_token(state_dir: Optional[Path] = StateDirOpt) -> None:
    """Replace this machine's token now (the agent also does it by itself every 30 days); the old one stops."""
    from credflow.agent.state import StateError, load
    from credflow.agent.worker import rotate_token
    from credflow.client.http import ApiError, Client

    where = _dir(state_dir)
    try:
        st = load(where)
    except StateError as exc:
        _fail(str(exc))
    client = Client(st.server, st.machine_token)
    try:
        rotate_token(st, where, client)
    except ApiError as exc:
        _fail(f"the server refused: {exc.problem.get('detail')} ({exc.status} {exc.problem.get('code', '')})")
    finally:
        client.close()
    err.print(f"machine {st.name or st.machine_id} has a new token, kept in {where}; the old one stops now "
              "(restart a running agent so it reads it)")


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error[/red]: {escape(message)}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
