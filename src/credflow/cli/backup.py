"""``credflow backup FILE`` and ``credflow restore FILE``: they open the server's database directly, on its host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from credflow.cli.common import err

# ruff: noqa: UP045  (typer reads Optional[...] annotations)


def backup(file: Path = typer.Argument(..., help="The backup file to write (replaced if it exists)."),
           data_dir: Optional[Path] = typer.Option(None, help="The server's data directory."),
           as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON.")) -> None:
    """Write a consistent copy of the database to FILE while the server runs: ciphertext only, never the master key.

    FILE is a gzip-compressed tar of manifest.json (schema version, the ids of the master keys needed to open
    it, the audit chain head, created time, database kind) and the database: a SQLite copy made with SQLite's
    backup API, or a pg_dump custom-format dump (CREDFLOW_DATABASE_URL). Run it on the server host, with the
    server's settings.
    """
    from credflow.services.backup import BackupProblem
    from credflow.services.backup import backup as make_backup
    from credflow.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    try:
        manifest = make_backup(settings, file)
    except BackupProblem as exc:
        err.print(f"[red]backup failed:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(manifest.as_dict(), indent=2, sort_keys=True))
        return
    typer.echo(f"backup written to {file}: {manifest.database} database, schema {manifest.schema_version}")
    typer.echo(f"master key(s) needed to open it: {', '.join(manifest.key_ids) or 'none'} (keep them apart from it)")
    typer.echo(f"audit head: {manifest.audit_head or 'no records'}")


def restore(file: Path = typer.Argument(..., help="A backup file written by credflow backup."),
            data_dir: Optional[Path] = typer.Option(None, help="The data directory to restore into."),
            force: bool = typer.Option(False, "--force", help="Replace a database that is already there (stop its "
                                                              "server first)."),
            as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON.")) -> None:
    """Load a backup into a fresh data directory, or the empty PostgreSQL database of CREDFLOW_DATABASE_URL.

    It refuses, changing nothing, a backup of a newer schema than this credflow knows, a backup whose master
    keys (by id) are not in the target's key file or CREDFLOW_MASTER_KEY, and a target that already holds a
    database unless --force. Afterwards, `credflow audit verify --head HEAD` with the head it prints checks the
    restored audit trail.
    """
    from credflow.services.backup import BackupProblem
    from credflow.services.backup import restore as load_backup
    from credflow.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    try:
        manifest = load_backup(settings, file, force=force)
    except BackupProblem as exc:
        err.print(f"[red]restore refused:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(manifest.as_dict(), indent=2, sort_keys=True))
        return
    typer.echo(f"restored the {manifest.database} backup of {manifest.created_at} (schema {manifest.schema_version})")
    if manifest.audit_head:
        typer.echo(f"audit head: {manifest.audit_head}")
        typer.echo(f"check it: credflow audit verify --head {manifest.audit_head}")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
