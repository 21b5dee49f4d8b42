"""The CLI's published surface: docs/cli.md is generated from the CLI and cannot drift from it, and the old
spellings, hidden from help and from the reference, still work for one release."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from credflow.cli.main import app
from credflow.cli.reference import reference
from tests.conftest import Api, sign_in_cli

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
OLD_SPELLINGS = [("store", "add"), ("team", "add"), ("team", "remove"), ("solution", "add"), ("notify",),
                 ("machine", "registration-token")]


def test_docs_cli_md_is_the_reference_the_cli_generates() -> None:
    assert DOCS.read_text() == reference(), (
        "docs/cli.md differs from the CLI: run `python -m credflow.cli.reference > docs/cli.md`")


def test_the_reference_lists_every_visible_command_and_no_hidden_one() -> None:
    page = reference()
    for command in ("store create", "team member add", "team member remove", "solution component add",
                    "rotation notify", "machine-registration create", "store kinds", "credential dependencies"):
        assert f"`credflow {command}`" in page
    for old in OLD_SPELLINGS:
        assert f"`credflow {' '.join(old)}`" not in page


@pytest.mark.parametrize("old", OLD_SPELLINGS, ids=" ".join)
def test_an_old_spelling_is_a_hidden_command(old: tuple[str, ...]) -> None:
    ctx = typer.Context(typer.main.get_command(app), info_name="credflow")
    for name in old:
        command = ctx.command.get_command(ctx, name)  # type: ignore[attr-defined]
        assert command is not None, f"credflow {' '.join(old)} is gone"
        ctx = typer.Context(command, info_name=name, parent=ctx)
    assert ctx.command.hidden  # left out of --help and of docs/cli.md


@pytest.fixture
def cf(client: TestClient, admin: Api, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    sign_in_cli(monkeypatch, client, admin)

    def invoke(*args: str) -> Result:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result

    return invoke


def test_store_add_still_registers_a_store(cf: Callable[..., Result], admin: Api) -> None:
    cf("store", "add", "vault")
    assert [s["name"] for s in admin.ok(admin.get(admin.e("/secret-stores")))["items"]] == ["vault"]


def test_team_add_and_team_remove_still_change_the_members(cf: Callable[..., Result], admin: Api) -> None:
    ann = admin.user("ann", "basic_user")
    admin.ok(admin.post(admin.e("/teams"), {"name": "ops", "members": []}), 201)

    def members() -> list[str]:
        return [m["email"] for m in admin.ok(admin.get(admin.e("/teams/ops")))["members"]]

    cf("team", "add", "ops", ann.info["email"])
    assert members() == ["ann@example.com"]
    cf("team", "remove", "ops", ann.info["email"])
    assert members() == []


def test_solution_add_still_adds_a_component(cf: Callable[..., Result], admin: Api,
                                            cred_setup: dict[str, Any]) -> None:
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "Robots", "display_name": "Robots",
                                                "version": "1.0.0.0"}), 201)
    cf("solution", "add", "Robots", "credential", "Robot login")
    solution = admin.ok(admin.get(admin.e("/solutions/Robots")))
    assert ("credential", "Robot login") in {(c["type"], c["name"]) for c in solution["components"]}


def test_notify_still_calls_the_seeds_action(cf: Callable[..., Result], cred_setup: dict[str, Any]) -> None:
    assert "accepted" in cf("notify", "builtin://default/vault", "robot-password").output


def test_machine_registration_token_still_makes_a_token(cf: Callable[..., Result]) -> None:
    assert "cfr_" in cf("machine", "registration-token", "--json").stdout
