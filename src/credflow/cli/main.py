"""The ``credflow`` command: the server, the machine agent and a client of the API."""

from __future__ import annotations

import typer

from credflow.cli import resources, server

app = typer.Typer(help="credflow: credentials for automation.", no_args_is_help=True)
server.register(app)
resources.register(app)
