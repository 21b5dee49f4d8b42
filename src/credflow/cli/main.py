"""The ``credflow`` command: the server, the machine agent and a client of the API."""

from __future__ import annotations

import typer

from credflow.cli import (
    agent,
    audit,
    automation,
    backup,
    credentials,
    identity,
    passwords,
    resources,
    rotation,
    server,
    solutions,
    teams,
)

app = typer.Typer(help="credflow: credentials for automation.", no_args_is_help=True)
server.register(app)
backup.register(app)
resources.register(app)
credentials.register(app)
teams.register(app)
audit.register(app)
agent.register(app)
automation.register(app)
solutions.register(app)
rotation.register(app)
passwords.register(app)
identity.register(app)
