"""The role table every authorization decision reads: what each role may grant and do."""

from __future__ import annotations

import pytest

from credflow.domain.roles import (
    ENVIRONMENT_ROLE_ACTIONS,
    GRANTABLE,
    CredentialRole,
    EnvironmentRole,
    credential_allows,
    env_allows,
    strongest,
)

OWNER, CO_OWNER, USER, USER_SHARE = (CredentialRole.OWNER, CredentialRole.CO_OWNER, CredentialRole.USER,
                                     CredentialRole.USER_SHARE)
ADMIN, MAKER, BASIC = (EnvironmentRole.SYSTEM_ADMINISTRATOR, EnvironmentRole.ENVIRONMENT_MAKER,
                       EnvironmentRole.BASIC_USER)


def test_a_user_share_grants_only_user_or_user_share() -> None:
    assert GRANTABLE[USER_SHARE] == {USER, USER_SHARE}


def test_a_user_grants_nothing() -> None:
    assert GRANTABLE[USER] == frozenset()


def test_owners_and_co_owners_grant_every_role_but_owner() -> None:
    assert GRANTABLE[OWNER] == GRANTABLE[CO_OWNER] == {CO_OWNER, USER, USER_SHARE}
    assert all(OWNER not in grantable for grantable in GRANTABLE.values())


@pytest.mark.parametrize(("role", "allowed"), [
    (OWNER, {"view", "use", "share", "edit", "delete"}),
    (CO_OWNER, {"view", "use", "share", "edit", "delete"}),
    (USER_SHARE, {"view", "use", "share"}),
    (USER, {"view", "use"}),
    (None, set()),
])
def test_what_a_credential_role_allows(role: CredentialRole | None, allowed: set[str]) -> None:
    actions = ("view", "use", "share", "edit", "delete", "anything_else")
    assert {a for a in actions if credential_allows(role, a)} == allowed


def test_each_environment_role_may_do_everything_the_weaker_ones_may() -> None:
    basic, maker, admin = (ENVIRONMENT_ROLE_ACTIONS[r] for r in (BASIC, MAKER, ADMIN))
    assert basic < maker < admin


@pytest.mark.parametrize(("action", "roles"), [
    ("run.create", {BASIC, MAKER, ADMIN}),
    ("rotation.notify", {BASIC, MAKER, ADMIN}),
    ("credential.create", {MAKER, ADMIN}),
    ("secret_store.read", {MAKER, ADMIN}),
    ("secret.write", {ADMIN}),
    ("connection.admin", {ADMIN}),
    ("user.admin", {ADMIN}),
    ("rotation.notify_all", {ADMIN}),
    ("no.such_action", set()),
])
def test_who_may_do_an_environment_action(action: str, roles: set[EnvironmentRole]) -> None:
    assert {r for r in EnvironmentRole if env_allows(r, action)} == roles


def test_no_role_in_the_environment_allows_nothing() -> None:
    assert not any(env_allows(None, a) for a in ENVIRONMENT_ROLE_ACTIONS[ADMIN])


def test_the_strongest_role_wins() -> None:
    assert strongest([USER, OWNER, USER_SHARE]) is OWNER
    assert strongest([USER, CO_OWNER, USER_SHARE]) is CO_OWNER
    assert strongest([USER, USER_SHARE]) is USER_SHARE
    assert strongest([USER]) is USER
    assert strongest([]) is None
