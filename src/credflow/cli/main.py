"""The ``credflow`` command: the server, the machine agent and a client of the API.

Every error reaches the user as one line on stderr and a non-zero exit code: problems the API answers with, a
server that cannot be reached, JSON that does not parse. A traceback only with ``CREDFLOW_DEBUG=1``.
"""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.markup import escape
from typer.core import TyperGroup

from credflow import __version__
from credflow.cli import (
    agent,
    audit,
    automation,
    backup,
    credentials,
    health,
    identity,
    passwords,
    resources,
    rotation,
    server,
    solutions,
    status,
    teams,
)
from credflow.cli.common import debugging, err, explain

# ruff: noqa: UP045  (typer reads Optional[...] annotations)


class CredflowGroup(TyperGroup):
    """The root command: turns an error no command handled into one line and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # exit codes, usage errors: click prints them
            raise
        except Exception as exc:
            if debugging():
                raise
            message = explain(exc) or (f"{type(exc).__name__}: {exc} (unexpected; CREDFLOW_DEBUG=1 shows where "
                                       "it happened)")
            err.print(f"[red]error[/red]: {escape(message)}", soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(cls=CredflowGroup, help="credflow: credentials for automation.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)


def _version(value: bool) -> None:
    if value:
        print(f"credflow {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Print credflow's version and exit.")) -> None:
    """credflow: credentials for automation."""


server.register(app)
backup.register(app)
status.register(app)
resources.register(app)
credentials.register(app)
teams.register(app)
audit.register(app)
agent.register(app)
automation.register(app)
solutions.register(app)
rotation.register(app)
health.register(app)
passwords.register(app)
identity.register(app)
