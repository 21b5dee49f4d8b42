"""Teams: groups of users of an environment that credentials are shared with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer.testing import CliRunner

from credflow.cli.main import app as cli
from credflow.services.core import Core
from tests.conftest import Api, problem
from tests.sharing.conftest import add_connection, connection_status


def _team(admin: Api, name: str, *members: Api) -> dict[str, Any]:
    body = {"name": name, "members": [m.info["email"] for m in members]}
    return admin.ok(admin.post(admin.e("/teams"), body), 201)


def _visible(api: Api, cred_id: str) -> bool:
    return any(c["id"] == cred_id for c in api.ok(api.get(api.e("/credentials")))["items"])


def test_a_system_administrator_creates_a_team_with_members(admin: Api) -> None:
    ann, bob = admin.user("ann", "basic_user"), admin.user("bob", "environment_maker")
    team = _team(admin, "ops", ann, bob)
    assert team["name"] == "ops" and team["environment"] == admin.env
    assert [m["email"] for m in team["members"]] == ["ann@example.com", "bob@example.com"]
    assert admin.ok(admin.get(admin.e(f"/teams/{team['id']}"))) == team
    assert admin.ok(admin.get(admin.e("/teams/ops"))) == team
    listed = ann.ok(ann.get(ann.e("/teams")))  # every role of the environment may read teams
    assert [t["name"] for t in listed["items"]] == ["ops"] and listed["next_cursor"] is None


def test_only_system_administrators_manage_teams(admin: Api) -> None:
    maker = admin.user("maker", "environment_maker")
    _team(admin, "ops")
    problem(maker.post(maker.e("/teams"), {"name": "mine"}), 403)
    problem(maker.put(maker.e(f"/teams/ops/members/{maker.info['id']}")), 403)
    problem(maker.delete(maker.e("/teams/ops")), 403)
    assert admin.ok(admin.get(admin.e("/teams/ops")))["members"] == []


def test_team_names_are_unique_and_members_belong_to_the_environment(admin: Api) -> None:
    _team(admin, "ops")
    problem(admin.post(admin.e("/teams"), {"name": "ops"}), 409, "duplicate_name")
    problem(admin.post(admin.e("/teams"), {"name": "  "}), 422, "empty_name")
    problem(admin.post(admin.e("/teams"), {"name": "x", "members": ["ghost@example.com"]}), 404, "user_not_found")
    other = admin.ok(admin.post("/environments", {"name": "other"}), 201)
    outsider = admin.user("outsider", "environment_maker", env=other["id"])
    problem(admin.put(admin.e(f"/teams/ops/members/{outsider.info['id']}")), 422, "not_in_environment")
    problem(admin.get(admin.e("/teams/nope")), 404, "team_not_found")


def test_teams_of_another_environment_are_not_visible(admin: Api, cred_setup: dict[str, Any]) -> None:
    other_env = admin.ok(admin.post("/environments", {"name": "other"}), 201)
    there = Api(admin.http, admin.token, other_env["id"])
    team = there.ok(there.post(there.e("/teams"), {"name": "elsewhere"}), 201)
    problem(admin.get(admin.e(f"/teams/{team['id']}")), 404, "team_not_found")
    cid = cred_setup["credential"]["id"]
    problem(admin.put(admin.e(f"/credentials/{cid}/shares/{team['id']}"), {"role": "user"}), 404,
            "principal_not_found")


def test_a_credential_shared_with_a_team_reaches_its_members(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    member, stranger = admin.user("member", "basic_user"), admin.user("stranger", "basic_user")
    team = _team(admin, "ops", member)
    got = admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/{team['id']}"), {"role": "user_share"}))
    assert got["principal_type"] == "team" and got["name"] == "ops"
    assert member.ok(member.get(member.e(f"/credentials/{cid}")))["my_role"] == "user_share"
    assert member.ok(member.get(member.e("/environment-variables/robot_pass")))["type"] == "secret"
    assert not _visible(stranger, cid)
    problem(stranger.get(stranger.e("/environment-variables/robot_pass")), 404)


def test_a_user_removed_from_a_team_loses_what_came_through_it_at_once(admin: Api, cred_setup: dict[str, Any],
                                                                       core: Core) -> None:
    cid = cred_setup["credential"]["id"]
    member = admin.user("member", "basic_user")
    _team(admin, "ops", member)
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/ops"), {"role": "co_owner"}))
    conn = add_connection(core, member, cid)
    assert admin.delete(admin.e(f"/teams/ops/members/{member.info['email']}")).status_code == 204
    problem(member.get(member.e(f"/credentials/{cid}")), 404, "credential_not_found")
    assert not _visible(member, cid)
    problem(member.patch(member.e(f"/credentials/{cid}"), {"description": "x"}), 404)
    assert connection_status(core, conn) == "access_revoked"
    assert admin.ok(admin.put(admin.e(f"/teams/ops/members/{member.info['id']}")))["members"][0]["name"] == "member"
    assert connection_status(core, conn) == "connected"
    assert _visible(member, cid)
    problem(admin.delete(admin.e("/teams/ops/members/nobody")), 404, "member_not_found")


def test_deleting_a_team_takes_away_its_shares(admin: Api, cred_setup: dict[str, Any], core: Core) -> None:
    cid = cred_setup["credential"]["id"]
    member = admin.user("member", "basic_user")
    _team(admin, "ops", member)
    admin.ok(admin.put(admin.e(f"/credentials/{cid}/shares/ops"), {"role": "user"}))
    conn = add_connection(core, member, cid)
    assert admin.delete(admin.e("/teams/ops")).status_code == 204
    problem(admin.get(admin.e("/teams/ops")), 404, "team_not_found")
    roles = [s["role"] for s in admin.ok(admin.get(admin.e(f"/credentials/{cid}/shares")))["items"]]
    assert roles == ["owner"]
    assert not _visible(member, cid)
    assert connection_status(core, conn) == "access_revoked"


def test_the_team_commands_of_the_cli(admin: Api, cli_as: Callable[[Api], None]) -> None:
    ann, bob = admin.user("ann", "basic_user"), admin.user("bob", "basic_user")
    cli_as(admin)
    runner = CliRunner()
    made = runner.invoke(cli, ["team", "create", "ops", "--member", ann.info["email"], "--json"])
    assert made.exit_code == 0, made.output
    assert runner.invoke(cli, ["team", "member", "add", "ops", bob.info["id"]]).exit_code == 0
    assert runner.invoke(cli, ["team", "member", "remove", "ops", ann.info["email"]]).exit_code == 0
    listed = runner.invoke(cli, ["team", "list"])
    assert listed.exit_code == 0 and "bob@example.com" in listed.output and "ann@example.com" not in listed.output
    assert runner.invoke(cli, ["team", "delete", "ops", "--yes"]).exit_code == 0
    assert admin.ok(admin.get(admin.e("/teams")))["items"] == []
    missing = runner.invoke(cli, ["team", "delete", "ops", "--yes"])
    assert missing.exit_code == 1 and "team_not_found" in missing.output
