"""``credflow password``: passwords for signing in to the web pages."""

from __future__ import annotations

import sys

import typer

from credflow.cli.common import calling, err, usage

password_app = typer.Typer(help="Passwords for the web pages.", no_args_is_help=True)


def _read(stdin: bool, prompt: str) -> str:
    """A line of standard input when asked to or when it is piped in; else a hidden prompt, twice."""
    if stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            usage(f"no {prompt} on standard input: pipe it in, or run the command in a terminal to be asked")
        return line
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True))


@password_app.command("set")
def password_set(user: str = typer.Argument(..., help="The user's id or email."),
                 stdin: bool = typer.Option(False, "--stdin", help="Read the password from standard input "
                                                                   "(the default when it is piped in).")
                 ) -> None:
    """Set a user's password (system administrators). For someone else it is a first password they change
    when they first sign in; for yourself it is your own."""
    password = _read(stdin, "password")
    with calling() as c:
        got = c.post(f"/users/{user}/password", {"password": password})
    err.print(f"password set for {got['email']}" + (" (to be changed at the first sign-in)"
                                                    if got["must_change_password"] else ""))


@password_app.command("change")
def password_change(stdin: bool = typer.Option(False, "--stdin", help="Read the current, then the new password "
                                                                       "from standard input, one per line.")) -> None:
    """Change your own password."""
    current = (sys.stdin.readline().rstrip("\n") if stdin or not sys.stdin.isatty()
               else typer.prompt("current password", hide_input=True, err=True))
    new = _read(stdin, "new password")
    with calling() as c:
        c.post("/me/password", {"current": current, "new": new})
    err.print("password changed")


def register(app: typer.Typer) -> None:
    app.add_typer(password_app, name="password")
