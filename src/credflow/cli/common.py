"""What every client command shares: where the server is, the token, and how to print."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from credflow.client.http import ApiError, Client

out = Console()
err = Console(stderr=True)


def config_path() -> Path:
    base = os.environ.get("CREDFLOW_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")), "credflow")
    return Path(base) / "config.json"


def save_login(server: str, token: str, env: str | None) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"server": server, "token": token, "environment": env}, fh)
    os.chmod(path, 0o600)
    return path


def _saved() -> dict[str, Any]:
    path = config_path()
    return json.loads(path.read_text()) if path.exists() else {}


def client() -> Client:
    saved = _saved()
    server = os.environ.get("CREDFLOW_SERVER") or saved.get("server")
    token = os.environ.get("CREDFLOW_TOKEN") or saved.get("token")
    if not server or not token:
        err.print("[red]Not signed in.[/red] Run `credflow login --server URL --token T` "
                  "or set CREDFLOW_SERVER and CREDFLOW_TOKEN.")
        raise typer.Exit(2)
    return Client(server, token)


def environment(explicit: str | None) -> str:
    return explicit or os.environ.get("CREDFLOW_ENVIRONMENT") or _saved().get("environment") or "default"


@contextmanager
def calling() -> Iterator[Client]:
    """Run API calls and turn a problem into a readable error and exit code 1."""
    c = client()
    try:
        yield c
    except ApiError as exc:
        p = exc.problem
        err.print(f"[red]error {exc.status} {p.get('code', '')}[/red]: {p.get('detail', '')}")
        for key in ("dependents", "missing", "errors"):
            if key in p:
                err.print(json.dumps(p[key], indent=2))
        raise typer.Exit(1) from None
    finally:
        c.close()


def show(data: Any, as_json: bool, columns: Sequence[str] | None = None,
         fmt: dict[str, Callable[[Any], str]] | None = None) -> None:
    """Tables for people, JSON for scripts."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        out.print("(none)")
        return
    cols = list(columns or rows[0].keys())
    table = Table(*cols)
    for row in rows:
        table.add_row(*[(fmt or {}).get(c, _cell)(row.get(c)) for c in cols])
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts.")
EnvOpt = typer.Option(None, "--env", "-e", help="Environment id or name (default: the saved one, or 'default').")
