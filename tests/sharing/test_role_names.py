"""A credential role is given as the API spells it (``co_owner``, ``user_share``) or as the seed does
(``co-owner``, ``Co-owner``, ``user-share``); a role that is neither is refused with the roles listed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, problem


def _share(api: Api, cred_id: str, principal: str, role: str) -> Any:
    return api.put(api.e(f"/credentials/{cred_id}/shares/{principal}"), {"role": role})


@pytest.mark.parametrize(("given", "kept"), [
    ("co_owner", "co_owner"), ("co-owner", "co_owner"), ("Co-owner", "co_owner"), (" CO-OWNER ", "co_owner"),
    ("user_share", "user_share"), ("user-share", "user_share"), ("user", "user"),
])
def test_the_seeds_spelling_of_a_role_is_the_same_role(admin: Api, cred_setup: dict[str, Any], given: str,
                                                       kept: str) -> None:
    mia = admin.user("mia")
    shared = admin.ok(_share(admin, cred_setup["credential"]["id"], mia.info["id"], given))
    assert shared["role"] == kept
    assert mia.ok(mia.get(mia.e(f"/credentials/{cred_setup['credential']['id']}")))["my_role"] == kept


@pytest.mark.parametrize("given", ["owner", "co owner", "coowner", "reader", ""])
def test_a_role_that_is_none_of_them_is_refused_with_the_roles_listed(admin: Api, cred_setup: dict[str, Any],
                                                                      given: str) -> None:
    mia = admin.user("mia")
    body = problem(_share(admin, cred_setup["credential"]["id"], mia.info["id"], given), 422, "unknown_role")
    assert body["allowed"] == ["co_owner", "user", "user_share"]
    assert "co_owner, user, user_share" in body["detail"]
    assert admin.ok(admin.get(admin.e(f"/credentials/{cred_setup['credential']['id']}/shares")))["items"][1:] == []


def test_a_user_share_grants_user_share_in_the_seeds_spelling_too(admin: Api, cred_setup: dict[str, Any]) -> None:
    cid = cred_setup["credential"]["id"]
    mia, bob, eve = admin.user("mia"), admin.user("bob"), admin.user("eve")
    admin.ok(_share(admin, cid, mia.info["id"], "user-share"))
    assert mia.ok(_share(mia, cid, bob.info["id"], "user-share"))["role"] == "user_share"
    problem(_share(mia, cid, eve.info["id"], "Co-owner"), 403, "role_not_grantable")
