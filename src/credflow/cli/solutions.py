"""Client commands for solutions (create, add, export, import) and for dependencies, shown as a tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import typer
from rich.tree import Tree

from credflow.cli.common import EnvOpt, JsonOpt, calling, environment, err, out, show
from credflow.cli.resources import cred_app, var_app
from credflow.client.http import Client

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

solution_app = typer.Typer(help="Solutions: move components between environments.", no_args_is_help=True)
TYPES = ("environment_variable", "credential", "desktop_flow", "connection_reference", "cloud_flow")
COLUMNS = ["unique_name", "display_name", "version", "publisher", "components"]


def _row(sol: dict[str, Any]) -> dict[str, Any]:
    return {**sol, "components": ", ".join(f"{c['type']}:{c['name']}" for c in sol.get("components", []))}


@solution_app.command("create")
def solution_create(unique_name: str, display_name: Optional[str] = typer.Option(None, help="Default: the name."),
                    version: str = typer.Option("1.0.0.0", help="Like 1.0.0.0."),
                    publisher: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Create an empty solution; add components with `credflow solution add`."""
    body = {"unique_name": unique_name, "display_name": display_name or unique_name, "version": version,
            "publisher": publisher}
    with calling() as c:
        show(_row(c.post(f"/environments/{environment(env)}/solutions", body)), as_json, COLUMNS)


@solution_app.command("list")
def solution_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """The solutions of the environment and their components."""
    with calling() as c:
        show([_row(s) for s in c.all(f"/environments/{environment(env)}/solutions")], as_json, COLUMNS)


@solution_app.command("update")
def solution_update(solution: str, version: Optional[str] = None, display_name: Optional[str] = None,
                    publisher: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Set a new version (an import updates a solution only to a newer version) or rename it."""
    body = {k: v for k, v in (("version", version), ("display_name", display_name), ("publisher", publisher))
            if v is not None}
    with calling() as c:
        show(_row(c.patch(f"/environments/{environment(env)}/solutions/{quote(solution, safe='')}", body)),
             as_json, COLUMNS)


@solution_app.command("add")
def solution_add(solution: str, type_: str = typer.Argument(..., metavar="TYPE", help=", ".join(TYPES)),
                 component: str = typer.Argument(..., help="The component's id or name."),
                 required: bool = typer.Option(True, help="Also add what it needs that no other solution holds."),
                 env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Add a component; a credential brings its variables, a cloud flow its desktop flows and references."""
    body = {"type": type_, "id": component, "add_required": required}
    with calling() as c:
        got = c.post(f"/environments/{environment(env)}/solutions/{quote(solution, safe='')}/components", body)
        if as_json:
            show(got, True)
            return
        for added in got["added"]:
            err.print(f"added {added['type']} {added['name']}")
        show(_row(got), False, COLUMNS)


@solution_app.command("export")
def solution_export(solution: str, output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                                       help="Default: SOLUTION.zip"),
                    env: Optional[str] = EnvOpt) -> None:
    """Write the solution zip: references and bindings, never a secret value."""
    with calling() as c:
        data = c.get(f"/environments/{environment(env)}/solutions/{quote(solution, safe='')}/export")
    path = output or Path(f"{solution}.zip")
    path.write_bytes(data)
    err.print(f"exported {solution} to {path} ({len(data)} bytes)")


@solution_app.command("import")
def solution_import(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The solution zip."),
                    dry_run: bool = typer.Option(False, "--dry-run", help="Report without changing anything."),
                    settings: Optional[Path] = typer.Option(None, "--settings", exists=True, dir_okay=False,
                                                            help="Deployment settings JSON for this environment."),
                    env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Import a solution zip: its dependencies must be there first; all or nothing."""
    files: dict[str, Any] = {"file": (file.name, file.read_bytes(), "application/zip")}
    if settings is not None:
        files["settings"] = (settings.name, settings.read_bytes(), "application/json")
    with calling() as c:
        report = c.post(f"/environments/{environment(env)}/solutions/import", files=files,
                        params={"dry_run": "true" if dry_run else "false"})
    if as_json:
        show(report, True)
        return
    sol = report["solution"]
    was = f" (was {sol['previous_version']})" if sol.get("previous_version") else ""
    err.print(("[yellow]dry run, nothing changed:[/yellow] " if dry_run else "imported ")
              + f"{sol['unique_name']} {sol['version']}{was}")
    rows = [{"outcome": k, "type": i["type"], "name": i["name"]}
            for k in ("created", "updated", "unchanged") for i in report[k]]
    show(rows, False, ["outcome", "type", "name"])


# --- dependencies ---------------------------------------------------------------------------------------------
def _pages(c: Client, path: str, every: bool) -> dict[str, Any]:
    got: dict[str, Any] = c.get(path, params={"limit": 500 if every else 50})
    while every and got.get("next_cursor"):
        more = c.get(path, params={"limit": 500, "cursor": got["next_cursor"]})
        got["connections"] += more["connections"]
        got["next_cursor"] = more["next_cursor"]
    return got


def _connection_label(conn: dict[str, Any]) -> str:
    return f"{conn['name']} [dim](owner {conn.get('owner_email') or conn['owner']}, {conn['status']})[/dim]"


def _tree(title: str, deps: dict[str, Any]) -> Tree:
    tree = Tree(title)
    counts = deps["counts"]
    shown = len(deps["connections"])
    if "credentials" in deps:
        creds = tree.add(f"Credentials ({counts['credentials']})")
        for cred in deps["credentials"]:
            node = creds.add(cred["name"])
            for conn in deps["connections"]:
                if conn["credential"] == cred["id"]:
                    node.add(_connection_label(conn))
    else:
        conns = tree.add(f"Connections ({counts['connections']})")
        for conn in deps["connections"]:
            conns.add(_connection_label(conn))
    if shown < counts["connections"]:
        tree.add(f"[yellow]{shown} of {counts['connections']} connections shown; --all lists every one[/yellow]")
    flows = tree.add(f"Cloud flows ({counts['cloud_flows']})")
    for flow in deps["cloud_flows"]:
        flows.add(flow["name"])
    return tree


@var_app.command("dependencies")
def variable_dependencies(name: str, every: bool = typer.Option(False, "--all", help="Every connection."),
                          env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Where an environment variable is used: credentials, their connections, and cloud flows."""
    with calling() as c:
        deps = _pages(c, f"/environments/{environment(env)}/environment-variables/{quote(name, safe='')}"
                         "/dependencies", every)
    if as_json:
        print(json.dumps(deps, indent=2))
        return
    out.print(_tree(f"Environment variable [bold]{name}[/bold]", deps))


@cred_app.command("dependencies")
def credential_dependencies(name: str, every: bool = typer.Option(False, "--all", help="Every connection."),
                            env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Where a credential is used: connections and cloud flows."""
    with calling() as c:
        deps = _pages(c, f"/environments/{environment(env)}/credentials/{quote(name, safe='')}/dependencies",
                      every)
    if as_json:
        print(json.dumps(deps, indent=2))
        return
    out.print(_tree(f"Credential [bold]{name}[/bold]", deps))


def register(app: typer.Typer) -> None:
    app.add_typer(solution_app, name="solution")
