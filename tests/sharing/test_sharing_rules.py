"""The seed's sharing rules, one test each, and what sharing and revoking do beyond the seed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from credflow.cli.main import app as cli
from credflow.services.core import Core
from tests.conftest import Api, problem
from tests.sharing.conftest import add_connection, connection_status


def _share(api: Api, cred_id: str, principal: str, role: str) -> Any:
    return api.put(api.e(f"/credentials/{cred_id}/shares/{principal}"), {"role": role})


def _shared(admin: Api, cred_id: str, name: str, role: str, env_role: str = "basic_user") -> Api:
    who = admin.user(name, env_role)
    admin.ok(_share(admin, cred_id, who.info["email"], role))
    return who


# --- the seed's rules ------------------------------------------------------------------------------------------
def test_a_co_owner_can_view_share_edit_and_delete(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    co = _shared(admin, cid, "co", "co_owner")
    assert co.ok(co.get(co.e(f"/credentials/{cid}")))["my_role"] == "co_owner"
    friend = admin.user("friend", "basic_user")
    assert co.ok(_share(co, cid, friend.info["id"], "co_owner"))["role"] == "co_owner"
    assert co.ok(co.patch(co.e(f"/credentials/{cid}"), {"description": "by co"}))["description"] == "by co"
    assert co.delete(co.e(f"/credentials/{cid}")).status_code == 204
    problem(admin.get(admin.e(f"/credentials/{cid}")), 404, "credential_not_found")


def test_a_user_can_view_only(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    user = _shared(admin, cid, "viewer", "user")
    assert user.ok(user.get(user.e(f"/credentials/{cid}")))["my_role"] == "user"
    friend = admin.user("friend", "basic_user")
    for role in ("user", "user_share", "co_owner"):
        problem(_share(user, cid, friend.info["id"], role), 403)
    problem(user.patch(user.e(f"/credentials/{cid}"), {"description": "x"}), 403)
    problem(user.delete(user.e(f"/credentials/{cid}")), 403)
    assert admin.ok(admin.get(admin.e(f"/credentials/{cid}")))["description"] == "for the robot"


def test_a_user_share_can_view_and_share_but_not_edit_or_delete(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    us = _shared(admin, cid, "sharer", "user_share")
    friend = admin.user("friend", "basic_user")
    assert us.ok(_share(us, cid, friend.info["email"], "user"))["role"] == "user"
    assert friend.ok(friend.get(friend.e(f"/credentials/{cid}")))["my_role"] == "user"
    problem(us.patch(us.e(f"/credentials/{cid}"), {"description": "x"}), 403)
    problem(us.delete(us.e(f"/credentials/{cid}")), 403)


def test_a_user_share_may_grant_only_user_or_user_share(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    us = _shared(admin, cid, "sharer", "user_share")
    friend = admin.user("friend", "basic_user")
    problem(_share(us, cid, friend.info["id"], "co_owner"), 403, "role_not_grantable")
    assert us.ok(_share(us, cid, friend.info["id"], "user_share"))["role"] == "user_share"
    problem(_share(us, cid, us.info["id"], "co_owner"), 403, "role_not_grantable")  # nor to itself
    co = _shared(admin, cid, "co", "co_owner")
    problem(_share(us, cid, co.info["id"], "user"), 403, "role_not_grantable")  # cannot demote a co_owner
    problem(us.delete(us.e(f"/credentials/{cid}/shares/{co.info['id']}")), 403, "role_not_grantable")
    roles = {s["email"]: s["role"] for s in admin.ok(admin.get(admin.e(f"/credentials/{cid}/shares")))["items"]}
    assert roles["friend@example.com"] == "user_share" and roles["co@example.com"] == "co_owner"


def test_the_creator_is_the_owner_and_keeps_that_role(admin: Api, cred_setup: dict[str, Any]) -> None:
    maker = admin.user("maker")
    admin.ok(admin.post(admin.e("/secret-stores/vault/access"), {"principal": maker.info["id"], "allowed": True}))
    cred = maker.credential("Mine", "robot_user", "robot_pass")
    assert cred["my_role"] == "owner" and cred["owner"] == maker.info["id"]
    shares = maker.ok(maker.get(maker.e(f"/credentials/{cred['id']}/shares")))
    assert shares["items"] == [{"principal": maker.info["id"], "principal_type": "user", "role": "owner",
                                "name": "maker", "email": "maker@example.com", "granted_by": None,
                                "created_at": cred["created_at"]}]
    problem(_share(admin, cred["id"], maker.info["email"], "user"), 422, "owner_role_fixed")
    problem(admin.delete(admin.e(f"/credentials/{cred['id']}/shares/{maker.info['id']}")), 422, "owner_role_fixed")


def test_sharing_grants_read_on_the_credentials_variables(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    basic = admin.user("basic", "basic_user")
    problem(basic.get(basic.e("/environment-variables/robot_user")), 404, "variable_not_found")
    assert basic.ok(basic.get(basic.e("/environment-variables")))["items"] == []
    admin.ok(_share(admin, cid, basic.info["id"], "user"))
    names = {v["schema_name"] for v in basic.ok(basic.get(basic.e("/environment-variables")))["items"]}
    assert names == {"robot_user", "robot_pass"}
    assert basic.ok(basic.get(basic.e("/environment-variables/robot_pass")))["type"] == "secret"
    admin.text_var("unrelated", "x")
    problem(basic.get(basic.e("/environment-variables/unrelated")), 404)


def test_revoking_a_share_does_not_revoke_the_variables(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    basic = _shared(admin, cid, "basic", "user")
    assert admin.delete(admin.e(f"/credentials/{cid}/shares/{basic.info['email']}")).status_code == 204
    problem(basic.get(basic.e(f"/credentials/{cid}")), 404, "credential_not_found")
    assert basic.ok(basic.get(basic.e("/environment-variables/robot_user")))["value"] == "robot@corp.example"
    assert basic.ok(basic.get(basic.e("/environment-variables/robot_pass")))["schema_name"] == "robot_pass"


def test_deleting_a_credential_does_not_delete_its_variables(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    basic = _shared(admin, cid, "basic", "co_owner")
    assert basic.delete(basic.e(f"/credentials/{cid}")).status_code == 204
    names = {v["schema_name"] for v in admin.ok(admin.get(admin.e("/environment-variables")))["items"]}
    assert names == {"robot_user", "robot_pass"}
    assert basic.ok(basic.get(basic.e("/environment-variables/robot_user")))["value"] == "robot@corp.example"


def test_creating_a_secret_variable_needs_permission_on_the_store(admin: Api) -> None:
    admin.store("vault")
    admin.secret("vault", "s", "v")
    maker = admin.user("maker")
    body = {"schema_name": "p", "type": "secret", "secret_reference": {"store": "vault", "name": "s"}}
    problem(maker.post(maker.e("/environment-variables"), body), 403, "store_access_denied")
    granted = admin.ok(admin.post(admin.e("/secret-stores/vault/access"),
                                  {"principal": maker.info["email"], "allowed": True}))
    assert granted["principal"] == maker.info["id"] and granted["allowed"] is True
    assert maker.ok(maker.post(maker.e("/environment-variables"), body), 201)["schema_name"] == "p"
    admin.ok(admin.post(admin.e("/secret-stores/vault/access"), {"principal": maker.info["id"], "allowed": False}))
    problem(maker.post(maker.e("/environment-variables"), {**body, "schema_name": "q"}), 403, "store_access_denied")
    text_ok = maker.post(maker.e("/environment-variables"), {"schema_name": "t", "type": "text", "value": "x"})
    assert text_ok.status_code == 201  # text variables need no store


def test_store_permission_can_come_through_a_team(admin: Api) -> None:
    admin.store("vault")
    admin.secret("vault", "s", "v")
    maker = admin.user("maker")
    admin.ok(admin.post(admin.e("/teams"), {"name": "robots", "members": [maker.info["email"]]}), 201)
    admin.ok(admin.post(admin.e("/secret-stores/vault/access"), {"principal": "robots", "allowed": True}))
    body = {"schema_name": "p", "type": "secret", "secret_reference": {"store": "vault", "name": "s"}}
    assert maker.post(maker.e("/environment-variables"), body).status_code == 201
    assert admin.delete(admin.e(f"/teams/robots/members/{maker.info['id']}")).status_code == 204
    problem(maker.post(maker.e("/environment-variables"), {**body, "schema_name": "q"}), 403, "store_access_denied")


def test_only_system_administrators_say_who_may_use_a_store(admin: Api) -> None:
    admin.store("vault")
    maker = admin.user("maker")
    problem(maker.post(maker.e("/secret-stores/vault/access"), {"principal": maker.info["id"], "allowed": True}),
            403)
    problem(admin.post(admin.e("/secret-stores/vault/access"), {"principal": "nobody@example.com",
                                                                "allowed": True}), 404, "principal_not_found")


# --- the share API ----------------------------------------------------------------------------------------------
def test_a_role_can_be_changed_and_the_list_shows_it(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    basic = _shared(admin, cid, "basic", "user")
    got = admin.ok(_share(admin, cid, basic.info["id"], "user_share"))
    assert got == {**got, "principal": basic.info["id"], "principal_type": "user", "role": "user_share"}
    page = admin.ok(admin.get(admin.e(f"/credentials/{cid}/shares")))
    assert [(s["role"], s["principal_type"]) for s in page["items"]] == [("owner", "user"), ("user_share", "user")]
    assert page["next_cursor"] is None


def test_shares_are_listed_in_pages(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    for name in ("a", "b", "c"):
        _shared(admin, cid, name, "user")
    first = admin.ok(admin.get(admin.e(f"/credentials/{cid}/shares"), params={"limit": 3}))
    rest = admin.ok(admin.get(admin.e(f"/credentials/{cid}/shares"),
                              params={"limit": 3, "cursor": first["next_cursor"]}))
    names = [s["name"] for s in first["items"] + rest["items"]]
    assert names == ["admin", "a", "b", "c"] and rest["next_cursor"] is None


def test_sharing_refuses_unknown_roles_and_principals(admin: Api, cred_setup: dict[str, Any], core: Core) -> None:
    cid = cred_setup["credential"]["id"]
    basic = admin.user("basic", "basic_user")
    problem(_share(admin, cid, basic.info["id"], "owner"), 422, "unknown_role")
    problem(_share(admin, cid, basic.info["id"], "admin"), 422, "unknown_role")
    problem(admin.put(admin.e(f"/credentials/{cid}/shares/{basic.info['id']}"), {"role": "user", "x": 1}), 422,
            "unknown_field")
    problem(_share(admin, cid, "ghost@example.com", "user"), 404, "principal_not_found")
    problem(admin.delete(admin.e(f"/credentials/{cid}/shares/{basic.info['id']}")), 404, "share_not_found")
    other_env = admin.ok(admin.post("/environments", {"name": "other"}), 201)
    outsider = admin.user("outsider", "environment_maker", env=other_env["id"])
    problem(_share(admin, cid, outsider.info["id"], "user"), 422, "principal_not_in_environment")
    with core.db.transaction() as s:  # a user of another organization is not a principal here
        s.execute(text("INSERT INTO organizations (id, name, created_at) VALUES ('org2', 'org2', :t)"),
                  {"t": cred_setup["credential"]["created_at"]})
        s.execute(text("INSERT INTO users (id, org_id, name, email, must_change_password, created_at) "
                       "VALUES ('u2', 'org2', 'stranger', 'stranger@other.example', false, :t)"),
                  {"t": cred_setup["credential"]["created_at"]})
    problem(_share(admin, cid, "u2", "user"), 404, "principal_not_found")
    problem(_share(admin, cid, "stranger@other.example", "user"), 404, "principal_not_found")


# --- revocation reaches connections ---------------------------------------------------------------------------
def test_revoking_turns_the_principals_connections_access_revoked(admin: Api, cred_setup: dict[str, Any],
                                                                  core: Core) -> None:
    cid = cred_setup["credential"]["id"]
    revoked, kept = _shared(admin, cid, "revoked", "user"), _shared(admin, cid, "kept", "user")
    mine, theirs = add_connection(core, revoked, cid, "mine"), add_connection(core, kept, cid, "theirs")
    assert admin.delete(admin.e(f"/credentials/{cid}/shares/{revoked.info['id']}")).status_code == 204
    assert connection_status(core, mine) == "access_revoked"
    assert connection_status(core, theirs) == "connected"
    admin.ok(_share(admin, cid, revoked.info["id"], "user_share"))
    assert connection_status(core, mine) == "connected"


def test_a_connection_keeps_access_through_another_share(admin: Api, cred_setup: dict[str, Any],
                                                         core: Core) -> None:
    cid = cred_setup["credential"]["id"]
    member = _shared(admin, cid, "member", "user")
    admin.ok(admin.post(admin.e("/teams"), {"name": "ops", "members": [member.info["id"]]}), 201)
    admin.ok(_share(admin, cid, "ops", "user"))
    conn = add_connection(core, member, cid)
    assert admin.delete(admin.e(f"/credentials/{cid}/shares/ops")).status_code == 204
    assert connection_status(core, conn) == "connected"  # the direct share still holds
    assert admin.delete(admin.e(f"/credentials/{cid}/shares/{member.info['id']}")).status_code == 204
    assert connection_status(core, conn) == "access_revoked"


def test_the_share_commands_of_the_cli(admin: Api, cred_setup: dict[str, Any],
                                       cli_as: Callable[[Api], None]) -> None:
    basic = admin.user("basic", "basic_user")
    cli_as(admin)
    runner = CliRunner()
    shared = runner.invoke(cli, ["credential", "share", "Robot login", "--with", basic.info["email"],
                                 "--role", "user_share", "--json"])
    assert shared.exit_code == 0, shared.output
    assert '"role": "user_share"' in shared.output
    listed = runner.invoke(cli, ["credential", "shares", "Robot login", "--json"])
    assert listed.exit_code == 0 and '"role": "owner"' in listed.output and "basic@example.com" in listed.output
    refused = runner.invoke(cli, ["credential", "share", "Robot login", "--with", basic.info["id"], "--role", "boss"])
    assert refused.exit_code == 1 and "unknown_role" in refused.output
    assert runner.invoke(cli, ["credential", "unshare", "Robot login", "--with", basic.info["id"]]).exit_code == 0
    problem(basic.get(basic.e(f"/credentials/{cred_setup['credential']['id']}")), 404)
