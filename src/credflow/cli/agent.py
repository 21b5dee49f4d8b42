"""``credflow agent register`` and ``credflow agent run``: this computer as a credflow machine."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Optional

import typer

from credflow.cli.common import err

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
             state_dir: Optional[Path] = StateDirOpt) -> None:
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
    err.print(f"registered machine {st.name} ({st.machine_id}); state in {where}")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@agent_app.command("run")
def run_agent(state_dir: Optional[Path] = StateDirOpt,
        wait: float = typer.Option(30.0, help="Seconds each long-poll claim waits for a job."),
        heartbeat_seconds: float = typer.Option(10.0, help="Seconds between heartbeats.")) -> None:
    """Send heartbeats, wait for jobs, run them one at a time and report their results."""
    from credflow.agent.state import StateError, load
    from credflow.agent.worker import Agent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        st = load(_dir(state_dir))
    except StateError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None
    agent = Agent(st, wait=wait, heartbeat_seconds=heartbeat_seconds)
    signal.signal(signal.SIGTERM, _interrupt)
    code = 0
    try:
        code = agent.run()
    except KeyboardInterrupt:
        err.print("agent stopped")
    finally:
        agent.close()
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
