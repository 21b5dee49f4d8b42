"""``credflow audit list`` over the API, and ``credflow audit verify``, which opens the server's database."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from credflow.cli.common import EnvOpt, JsonOpt, calling, environment, err, out, print_json, show

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@audit_app.command("list")
def audit_list(object_id: Optional[str] = typer.Option(None, "--object", help="An object id."),
               actor: Optional[str] = typer.Option(None, help="user:ID, machine:ID, an id or an email."),
               since: Optional[str] = typer.Option(None, help="RFC 3339 time."),
               action: Optional[str] = typer.Option(None, help="An action or a prefix (credential)."),
               env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """The environment's audit trail (system administrators)."""
    params = {k: v for k, v in (("object", object_id), ("actor", actor), ("since", since), ("action", action))
              if v is not None}
    with calling() as c:
        show(c.all(f"/environments/{environment(env)}/audit", **params), as_json,
             ["seq", "at", "actor", "action", "object_type", "object_id", "detail"])


@audit_app.command("verify")
def audit_verify(data_dir: Optional[Path] = typer.Option(None, help="The server's data directory."),
                 head: Optional[str] = typer.Option(None, help="A head (SEQ:HASH) printed by an earlier verify: "
                                                    "also finds records cut off the end since then."),
                 as_json: bool = JsonOpt) -> None:
    """Check the hash chain in the server's database; name each changed, inserted or deleted record. Exit 1 if any.

    It reads the database directly, not through the API: run it on the server host, with the server's settings.
    """
    from credflow.services.access.audit_log import chain_head, check_chain
    from credflow.services.core import build_core
    from credflow.settings import Settings

    core = build_core(Settings(data_dir=data_dir) if data_dir is not None else Settings())
    try:
        if head is not None and not _is_head(head):
            err.print("--head is SEQ:HASH, as verify prints it")
            raise typer.Exit(2)
        count, findings = check_chain(core, head)
        last = chain_head(core)
    finally:
        core.db.engine.dispose()
    if as_json:
        print_json({"ok": not findings, "records": count, "head": last,
                    "findings": [{"kind": f.kind, "message": f.message} for f in findings]})
        if findings:
            raise typer.Exit(1)
        return
    for finding in findings:
        err.print(f"[red]{finding.kind}[/red] {finding.message}")
    if findings:
        err.print(f"the audit trail does not hold: {len(findings)} problem(s) in {count} records")
        raise typer.Exit(1)
    out.print(f"the audit trail holds: {count} records, every link intact")
    out.print(f"head: {last} (keep it apart from credflow; pass it as --head to find records cut off later)")


def _is_head(text: str) -> bool:
    seq, sep, digest = text.partition(":")
    return bool(sep) and seq.isdigit() and len(digest) == 64


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
