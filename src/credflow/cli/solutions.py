"""``credflow solution``: solutions, their components, and moving them between environments (export, import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import typer

from credflow.cli.common import EnvOpt, JsonOpt, calling, environment, err, show

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

solution_app = typer.Typer(help="Solutions: move components between environments.", no_args_is_help=True)
component_app = typer.Typer(help="The components of a solution.", no_args_is_help=True)
TYPES = ("environment_variable", "credential", "desktop_flow", "connection_reference", "cloud_flow")
COLUMNS = ["unique_name", "display_name", "version", "publisher", "components"]


def _row(sol: dict[str, Any]) -> dict[str, Any]:
    return {**sol, "components": ", ".join(f"{c['type']}:{c['name']}" for c in sol.get("components", []))}


@solution_app.command("create")
def solution_create(unique_name: str, display_name: Optional[str] = typer.Option(None, help="Default: the name."),
                    version: str = typer.Option("1.0.0.0", help="Like 1.0.0.0."),
                    publisher: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Create an empty solution; add components with `credflow solution component add`."""
    body = {"unique_name": unique_name, "display_name": display_name or unique_name, "version": version,
            "publisher": publisher}
    with calling() as c:
        made = c.post(f"/environments/{environment(env)}/solutions", body)
        show(made if as_json else _row(made), as_json, COLUMNS)


@solution_app.command("list")
def solution_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """The solutions of the environment and their components."""
    with calling() as c:
        found = c.all(f"/environments/{environment(env)}/solutions")
        show(found if as_json else [_row(s) for s in found], as_json, COLUMNS)


@solution_app.command("update")
def solution_update(solution: str, version: Optional[str] = None, display_name: Optional[str] = None,
                    publisher: Optional[str] = None, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Set a new version (an import updates a solution only to a newer version) or rename it."""
    body = {k: v for k, v in (("version", version), ("display_name", display_name), ("publisher", publisher))
            if v is not None}
    with calling() as c:
        got = c.patch(f"/environments/{environment(env)}/solutions/{quote(solution, safe='')}", body)
        show(got if as_json else _row(got), as_json, COLUMNS)


@component_app.command("add")
def component_add(solution: str, type_: str = typer.Argument(..., metavar="TYPE", help=", ".join(TYPES)),
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


solution_app.add_typer(component_app, name="component")
solution_app.command("add", hidden=True)(component_add)  # the old spelling, kept for one release


def register(app: typer.Typer) -> None:
    app.add_typer(solution_app, name="solution")
