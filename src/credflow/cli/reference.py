"""The command reference, generated from the CLI itself: ``python -m credflow.cli.reference > docs/cli.md``.

It walks the click command tree Typer builds for ``credflow`` and prints every command in the order
``--help`` lists them, with its help, usage, arguments and options as ``--help`` words them. Hidden commands
(old spellings kept for a release) are left out. ``tests/test_cli_reference.py`` fails when docs/cli.md
differs from what this prints, so the page cannot drift from the code.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator

import typer
from typer.core import TyperGroup

from credflow.cli.main import app

HEADER = """\
# Command reference

Generated from the CLI by `python -m credflow.cli.reference > docs/cli.md`; do not edit by hand.
Every command also takes `--help`.
"""
NOT_OURS = {"help", "install_completion", "show_completion"}  # options Typer adds to every command or the root


def reference() -> str:
    root = typer.Context(typer.main.get_command(app), info_name="credflow")
    return "\n".join([HEADER, *(_section(ctx) for ctx in _walk(root))])


def _walk(ctx: typer.Context) -> Iterator[typer.Context]:
    yield ctx
    for child in _visible_children(ctx):
        yield from _walk(child)


def _section(ctx: typer.Context) -> str:
    command = ctx.command
    depth = ctx.command_path.count(" ")
    lines = [f"{'#' * max(2, min(depth + 1, 4))} `{ctx.command_path}`", ""]
    if command.help:
        lines += [_prose(inspect.cleandoc(command.help)), ""]
    if not isinstance(command, TyperGroup):
        lines += [f"Usage: `{' '.join([ctx.command_path, *command.collect_usage_pieces(ctx)])}`", ""]
    arguments: list[str] = []
    options: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None and param.name not in NOT_OURS:
            (arguments if param.param_type_name == "argument" else options).append(_item(*record))
    children = [_item(c.command_path, _summary(c.command.help)) for c in _visible_children(ctx)]
    for title, items in (("Arguments", arguments), ("Options", options), ("Commands", children)):
        if items:
            lines += [f"{title}:", "", *items, ""]
    return "\n".join(lines)


def _visible_children(ctx: typer.Context) -> list[typer.Context]:
    command = ctx.command
    if not isinstance(command, TyperGroup):
        return []
    found = (command.get_command(ctx, name) for name in command.list_commands(ctx))
    return [typer.Context(sub, info_name=sub.name, parent=ctx) for sub in found if sub is not None and not sub.hidden]


def _item(name: str, help_text: str) -> str:
    text = " ".join(help_text.split())
    return f"- `{name}`: {_prose(text)}" if text else f"- `{name}`"


def _summary(help_text: str | None) -> str:
    """The first paragraph, on one line."""
    return " ".join(inspect.cleandoc(help_text or "").split("\n\n")[0].split())


def _prose(text: str) -> str:
    """Help text as Markdown: angle brackets would read as HTML tags."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    sys.stdout.write(reference())
