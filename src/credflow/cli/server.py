"""``credflow serve`` and ``credflow keys rotate``: commands that run beside the database, not over HTTP."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from credflow.settings import Settings

err = Console(stderr=True)
# On SIGTERM or SIGINT the requests in flight have this long to finish (waiting claims answer at once); then
# the background workers up to lifecycle.STOP_WORKERS_SECONDS: the process is gone within 10 s. A second
# SIGINT stops at once.
GRACEFUL_SHUTDOWN_SECONDS = 5


def _settings(data_dir: Path | None) -> Settings:
    from credflow.settings import Settings

    if data_dir is not None:
        os.environ["CREDFLOW_DATA_DIR"] = str(data_dir)
    return Settings()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    data_dir: Annotated[Optional[Path], typer.Option(help="Data directory (default ./.credflow).")] = None,  # noqa: UP045
) -> None:
    """Start the credflow server (SQLite and the builtin store in the data directory by default)."""
    from credflow.services.access import startup

    settings = _settings(data_dir)
    try:  # before the web framework and the server are imported: a refusal comes at once
        startup.check(settings)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    import uvicorn

    from credflow.api.app import create_app
    from credflow.api.observability import configure_logging
    from credflow.services.access.users import bootstrap
    from credflow.services.core import build_core

    configure_logging(settings.log_format)
    json_logs = settings.log_format == "json"
    say = logging.getLogger("credflow.serve").info if json_logs else err.print
    core = build_core(settings)
    token = bootstrap(core, settings.bootstrap_token)
    if token:
        say("credflow created the user admin. Its API token, shown only this once, is on standard output"
            if json_logs else "[bold]credflow created the user admin.[/bold] Its API token, shown only this once:")
        print(token, flush=True)
    say(f"credflow serving on http://{host}:{port} (data in {settings.data_dir.resolve()})")
    app = create_app(settings, core)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    if json_logs:  # uvicorn's own lines go through the JSON handler too
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None,
                                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    server = _draining_server(app)(config)
    server.run()
    if not server.started:
        sys.exit(3)  # as uvicorn.run: the server could not start (the port is taken, say)


def _draining_server(app: FastAPI) -> type[uvicorn.Server]:
    """uvicorn's server, which also begins the app's graceful stop (``lifecycle.drain``) the moment a stop
    signal arrives: uvicorn waits for open connections before the app's shutdown runs, and a claim waiting for
    a job would otherwise hold its connection for up to its whole wait."""
    import uvicorn

    from credflow.api.lifecycle import drain

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            drain(app)

    return DrainingServer


keys = typer.Typer(help="Master key (KEK) management.")


@keys.command("rotate")
def rotate(
    data_dir: Annotated[Optional[Path], typer.Option(help="Data directory.")] = None,  # noqa: UP045
) -> None:
    """Make a new master key active and re-wrap every data key under it. Safe while the server runs.

    It opens the server's database and master key directly, not through the API: run it on the server host.
    """
    from credflow.services.core import build_core

    settings = _settings(data_dir)
    core = build_core(settings)
    if settings.master_key is None:
        kid = core.keyring.add_new_active_key()
        err.print(f"new master key {kid} is active")
    with core.db.transaction() as s:
        count = core.barrier.rewrap_all(s)
    err.print(f"re-wrapped {count} data keys under key {core.keyring.active_id}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(keys, name="keys")
