"""``credflow health``: what needs attention in an environment, worst first; and notification hooks."""

from __future__ import annotations

from typing import Optional

import typer

from credflow.cli.common import (
    EnvOpt,
    JsonOpt,
    YesOpt,
    calling,
    confirm,
    environment,
    err,
    print_json,
    show,
    show_secret,
)

# ruff: noqa: UP045  (typer reads Optional[...] annotations)

hook_app = typer.Typer(help="Notification hooks: URLs told (signed POSTs) when a health finding appears or clears. "
                            "System administrators only.", no_args_is_help=True)


def health(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """The findings you may see, worst first: expired, expires_soon, unreadable, stale, not_rotated,
    verification_failed, unused, lease_contention. Exit code 2 when any is critical, 0 otherwise."""
    with calling() as c:
        got = c.get(f"/environments/{environment(env)}/health")
    if as_json:
        print_json(got)
    else:
        show(got["items"], False, ["severity", "kind", "credential_name", "connection_name", "since", "detail"])
        counts = got["counts"]
        err.print(f"{counts['critical']} critical, {counts['warning']} warning, {counts['info']} info")
    if got["counts"]["critical"]:
        raise typer.Exit(2)


@hook_app.command("create")
def hook_create(url: str = typer.Argument(..., help="http or https; a Slack or Teams incoming webhook, or yours."),
                min_severity: str = typer.Option("warning", "--min-severity",
                                                 help="critical, warning or info: the least a finding must be."),
                env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Make a notification hook. Its signing secret is shown only now: X-Credflow-Signature is sha256=<hex>, the
    HMAC-SHA256 of '<X-Credflow-Timestamp>.<body>' under it."""
    with calling() as c:
        made = c.post(f"/environments/{environment(env)}/notification-hooks",
                      {"url": url, "min_severity": min_severity})
    if as_json:
        print_json(made)
        return
    show({k: v for k, v in made.items() if k != "secret"}, False)
    show_secret("the hook's signing secret", made["secret"])


@hook_app.command("list")
def hook_list(env: Optional[str] = EnvOpt, as_json: bool = JsonOpt) -> None:
    with calling() as c:
        show(c.all(f"/environments/{environment(env)}/notification-hooks"), as_json,
             ["id", "url", "min_severity", "created_at"])


@hook_app.command("delete")
def hook_delete(hook_id: str, yes: bool = YesOpt, env: Optional[str] = EnvOpt) -> None:
    """Delete a notification hook: it is told nothing more."""
    confirm(f"delete notification hook {hook_id}", yes)
    with calling() as c:
        c.delete(f"/environments/{environment(env)}/notification-hooks/{hook_id}")
    err.print(f"notification hook {hook_id} deleted")


def register(app: typer.Typer) -> None:
    app.command("health")(health)
    app.add_typer(hook_app, name="notification-hook")
