"""Client commands for sharing credentials and for teams; ``credflow audit list`` over the API and
``credflow audit verify`` beside the database."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from credflow.cli.common import EnvOpt, JsonOpt, calling, environment, err, out, show
from credflow.cli.resources import cred_app, credential_id

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

team_app = typer.Typer(help="Teams: groups of users a credential can be shared with.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)

SHARE_COLUMNS = ["principal", "principal_type", "name", "email", "role"]
TEAM_COLUMNS = ["id", "name", "members"]


def _members(value: list[dict[str, str]]) -> str:
    return ", ".join(m["email"] for m in value)


@cred_app.command("share")
def cred_share(name: str, principal: str = typer.Option(..., "--with", help="A user id or email, or a team."),
               role: str = typer.Option(..., help="co_owner, user or user_share."),
               env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Grant a role on a credential (or change it). Its environment variables become readable too."""
    with calling() as c:
        e = environment(env)
        show(c.put(f"/environments/{e}/credentials/{credential_id(c, e, name)}/shares/{principal}", {"role": role}),
             as_json, SHARE_COLUMNS)


@cred_app.command("unshare")
def cred_unshare(name: str, principal: str = typer.Option(..., "--with", help="A user id or email, or a team."),
                 env: Optional[str] = EnvOpt) -> None:
    """Revoke a share. The environment variables stay readable; connections of that principal stop."""
    with calling() as c:
        e = environment(env)
        c.delete(f"/environments/{e}/credentials/{credential_id(c, e, name)}/shares/{principal}")
        err.print(f"revoked {principal}'s access to {name}")


@cred_app.command("shares")
def cred_shares(name: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Who holds which role on a credential (the owner first)."""
    with calling() as c:
        e = environment(env)
        show(c.all(f"/environments/{e}/credentials/{credential_id(c, e, name)}/shares"), as_json, SHARE_COLUMNS)


@team_app.command("create")
def team_create(name: str, member: list[str] = typer.Option([], help="A user id or email (repeatable)."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.post(f"/environments/{environment(env)}/teams", {"name": name, "members": member}), as_json,
             TEAM_COLUMNS, {"members": _members})


@team_app.command("list")
def team_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(f"/environments/{environment(env)}/teams"), as_json, TEAM_COLUMNS, {"members": _members})


@team_app.command("add")
def team_add(team: str, user: str, env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Add a user (id or email) to a team."""
    with calling() as c:
        show(c.put(f"/environments/{environment(env)}/teams/{team}/members/{user}"), as_json, TEAM_COLUMNS,
             {"members": _members})


@team_app.command("remove")
def team_remove(team: str, user: str, env: Optional[str] = EnvOpt) -> None:
    """Remove a user from a team; what came through the team ends at once."""
    with calling() as c:
        c.delete(f"/environments/{environment(env)}/teams/{team}/members/{user}")
        err.print(f"removed {user} from {team}")


@team_app.command("delete")
def team_delete(team: str, env: Optional[str] = EnvOpt) -> None:
    """Delete a team and every share and store permission granted to it."""
    with calling() as c:
        c.delete(f"/environments/{environment(env)}/teams/{team}")
        err.print(f"deleted team {team}")


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
def audit_verify(data_dir: Optional[Path] = typer.Option(None, help="Data directory."),
                 head: Optional[str] = typer.Option(None, help="A head (SEQ:HASH) printed by an earlier verify: "
                                                    "also finds records cut off the end since then.")) -> None:
    """Check the hash chain in the database; name each changed, inserted or deleted record. Exit 1 if any."""
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
    app.add_typer(team_app, name="team")
    app.add_typer(audit_app, name="audit")
