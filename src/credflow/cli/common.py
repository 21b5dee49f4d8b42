"""What every client command shares: where the server is, the token, how to print, how to ask, how to fail.

Output: ``--json`` prints only JSON on stdout (the API's objects, ids and all); otherwise lists are tables
on a terminal and tab-separated lines (no header, one row a line) when stdout is not one, and a single object
is a key/value list. Messages go to stderr. One-time secrets are printed whole, on a line of their own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from credflow.client.http import ApiError, Client
from credflow.client.names import AmbiguousReference, Names

out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages are never cut into lines of 80


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


def saved() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        got = json.loads(path.read_text())
    except ValueError:
        fail(f"{path} is not valid JSON; sign in again with `credflow login` (it rewrites the file)")
    return got if isinstance(got, dict) else {}


def server_url() -> str | None:
    return os.environ.get("CREDFLOW_SERVER") or saved().get("server")


def client() -> Client:
    server = server_url()
    token = os.environ.get("CREDFLOW_TOKEN") or saved().get("token")
    if not server or not token:
        err.print("[red]Not signed in.[/red] Run `credflow login --server URL` (it asks for the token) "
                  "or set CREDFLOW_SERVER and CREDFLOW_TOKEN.")
        raise typer.Exit(2)
    return Client(server, token)


def environment(explicit: str | None) -> str:
    return explicit or os.environ.get("CREDFLOW_ENVIRONMENT") or saved().get("environment") or "default"


# --- failing ------------------------------------------------------------------------------------------------
def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit ``code`` (2: the command line is wrong)."""
    err.print(f"[red]error[/red]: {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def usage(message: str) -> NoReturn:
    fail(message, 2)


def debugging() -> bool:
    """CREDFLOW_DEBUG=1: let errors through with their traceback."""
    return os.environ.get("CREDFLOW_DEBUG", "") not in ("", "0")


def explain(exc: BaseException) -> str | None:
    """What a user should read for an error the commands do not handle themselves; None for a bug."""
    if isinstance(exc, ApiError):
        p = exc.problem
        line = f"{p.get('detail') or p.get('title') or 'the server refused'} ({exc.status} {p.get('code', '')})"
        for item in p.get("errors") or []:
            if isinstance(item, dict):
                line += f"; {item.get('field', '')}: {item.get('problem', item)}"
        for key in ("dependents", "missing"):
            if key in p:
                line += f"\n{key}: {json.dumps(p[key], indent=2)}"
        return line
    if isinstance(exc, AmbiguousReference):
        return str(exc)
    if isinstance(exc, httpx.HTTPError):
        url = str(exc.request.url.copy_with(path="/", query=None)) if _has_request(exc) else server_url() or ""
        where = url.rstrip("/")
        if isinstance(exc, httpx.ConnectError):
            return f"cannot reach the credflow server at {where}: is it running, and is the URL right?"
        if isinstance(exc, httpx.TimeoutException):
            return f"the credflow server at {where} did not answer in time"
        return f"talking to the credflow server at {where} failed: {type(exc).__name__}: {exc}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc}"
    if isinstance(exc, OSError):
        return str(exc)
    return None


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True


@contextmanager
def calling() -> Iterator[Client]:
    """Run API calls; a problem, an unreachable server or an ambiguous id becomes one line and exit code 1."""
    c = client()
    try:
        yield c
    except (ApiError, AmbiguousReference, httpx.HTTPError) as exc:
        if debugging():
            raise
        fail(explain(exc) or str(exc))
    finally:
        c.close()


def names(c: Client, env: str | None) -> Names:
    return Names(c, environment(env))


# --- asking ------------------------------------------------------------------------------------------------
def confirm(action: str, yes: bool) -> None:
    """Ask before ``action`` on a terminal; elsewhere (a script) it needs --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        usage(f"not confirmed: {action}? Add --yes to confirm (standard input is not a terminal to ask on)")
    if not typer.confirm(f"{action}?", default=False, err=True):
        err.print("nothing changed")
        raise typer.Exit(1)


def read_secret(what: str, from_stdin: bool = False) -> str:
    """A secret from standard input when it is piped in (or ``from_stdin``), else a hidden prompt, twice."""
    if from_stdin or not sys.stdin.isatty():
        value = sys.stdin.read().rstrip("\n")
        if not value:
            usage(f"no {what} on standard input: pipe it in, or run the command in a terminal to be asked")
        return value
    return str(typer.prompt(what, hide_input=True, confirmation_prompt=True, err=True))


# --- printing ------------------------------------------------------------------------------------------------
def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str), flush=True)


def cell(value: Any) -> str:
    """A value as people read it: lists joined with commas, mappings as key=value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


Formats = dict[str, Callable[[Any], str]]


def show(data: Any, as_json: bool, columns: Sequence[str] | None = None, fmt: Formats | None = None,
         nm: Names | None = None) -> None:
    """JSON for scripts (``data`` as the API gave it); for people a list as a table (tab-separated lines when
    stdout is not a terminal) and one object as a key/value list. ``nm`` puts names where the API has ids."""
    if as_json:
        print_json(data)
        return
    formats = {**(humane(nm) if nm is not None else {}), **(fmt or {})}
    if isinstance(data, list):
        _rows(data, columns, formats)
    else:
        _record(data, columns, formats)


def _text(formats: Formats, key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    return formats[key](value) if key in formats and value is not None else cell(value)


def _rows(rows: list[dict[str, Any]], columns: Sequence[str] | None, formats: Formats) -> None:
    if not rows:
        err.print("(none)")
        return
    cols = list(columns or rows[0].keys())
    texts = [[_text(formats, c, row) for c in cols] for row in rows]
    if not stdout_is_terminal():
        for line in texts:
            print("\t".join(_flat(t) for t in line))
        sys.stdout.flush()
        return
    table = Table(*cols)
    for column in table.columns:
        column.overflow = "fold"  # nothing is cut off: a long value folds onto the next line
    for line in texts:
        table.add_row(*(escape(t) for t in line))
    out.print(table)


def _record(row: dict[str, Any], fields: Sequence[str] | None, formats: Formats) -> None:
    keys = list(fields or row.keys())
    if not stdout_is_terminal():
        for k in keys:
            print(f"{k}\t{_flat(_text(formats, k, row))}")
        sys.stdout.flush()
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for k in keys:
        grid.add_row(escape(k), escape(_text(formats, k, row)))
    out.print(grid)


def _flat(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def show_secret(what: str, value: str) -> None:
    """A one-time secret: whole, on a line of its own on stdout, after a note on stderr that it is shown once."""
    err.print(f"[bold]{escape(what)}[/bold], shown only this once (keep it now; credflow cannot show it again):")
    print(value, flush=True)


def humane(nm: Names) -> Formats:
    """Names for the id fields of the API's views."""

    def one(kind: str) -> Callable[[Any], str]:
        return lambda v: nm.name(kind, v)

    def many(kind: str) -> Callable[[Any], str]:
        return lambda vs: ", ".join(nm.name(kind, v) for v in vs or [])

    def target(t: Any) -> str:
        if not isinstance(t, dict):
            return cell(t)
        if t.get("machine"):
            return f"machine {nm.name('machine', t['machine'])}"
        if t.get("machine_group"):
            return f"machine group {nm.name('machine_group', t['machine_group'])}"
        return cell(t)

    def roles(r: Any) -> str:
        if not isinstance(r, dict):
            return cell(r)
        return ", ".join(f"{nm.name('environment', e)}={role}" for e, role in r.items())

    def members(ms: Any) -> str:
        return ", ".join(m.get("email") or m.get("name") or m.get("id", "") if isinstance(m, dict)
                         else nm.name("user", m) for m in ms or [])

    return {"owner": one("user"), "environment": one("environment"), "credential": one("credential"),
            "username_variable": one("variable"), "password_variable": one("variable"),
            "desktop_flow": one("desktop_flow"), "connection": one("connection"), "machine": one("machine"),
            "cloud_flow": one("cloud_flow"), "machines": many("machine"), "groups": many("machine_group"),
            "allowed_desktop_flows": many("desktop_flow"), "target": target, "environment_roles": roles,
            "members": members, "store": one("store"), "created_by": one("user")}


JsonOpt = typer.Option(False, "--json", help="Print only JSON on stdout, for scripts.")
EnvOpt = typer.Option(None, "--env", "-e", help="Environment id or name (default: the saved one, or 'default').")
YesOpt = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (needed when not on a terminal).")
