"""``credflow serve`` and ``credflow keys rotate``: commands that run beside the database, not over HTTP."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from credflow.settings import Settings

err = Console(stderr=True)


def _settings(data_dir: Path | None) -> Settings:
    if data_dir is not None:
        os.environ["CREDFLOW_DATA_DIR"] = str(data_dir)
    return Settings()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    data_dir: Annotated[Optional[Path], typer.Option(help="Data directory (default ./.credflow).")] = None,  # noqa: UP045
) -> None:
    """Start the credflow server (SQLite and the builtin store in the data directory by default)."""
    import uvicorn

    from credflow.api.app import create_app
    from credflow.services.access.users import bootstrap
    from credflow.services.core import build_core

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(data_dir)
    core = build_core(settings)
    token = bootstrap(core, settings.bootstrap_token)
    if token:
        err.print("[bold]credflow created the user admin.[/bold] Its API token, shown only this once:")
        print(token, flush=True)
    err.print(f"credflow serving on http://{host}:{port} (data in {settings.data_dir.resolve()})")
    uvicorn.run(create_app(settings, core), host=host, port=port, log_level="warning")


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
