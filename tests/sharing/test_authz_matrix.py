"""Every (principal kind, action) pair over the HTTP API, each with the exact status code it must get.

One world per database backend: an owner's credential shared with each credential role (directly and through
a team), callers with each environment role and no share, a user of another environment and of another
organization, a machine token, no token and a wrong token. Actions that change the credential run on a fresh
copy with the same shares when they are expected to succeed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from credflow.api.app import create_app
from credflow.persistence.tables import Environment, EnvironmentRoleGrant, Machine, Organization, User
from credflow.services.access import tokens
from credflow.services.access.authz import token_hash
from credflow.services.access.users import bootstrap
from credflow.services.core import build_core
from credflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, Api, pg_schema_url

LISTED, HIDDEN = "listed", "hidden"
ACTIONS = ["view", "list", "shares", "dependencies", "read_variable", "edit", "delete", "share_co_owner",
           "share_user", "share_user_share", "unshare_user", "unshare_co_owner", "create_credential",
           "create_variable", "create_team", "list_teams", "read_audit", "store_access"]

# The expected outcome of each action above, per principal kind.
_CO_OWNER = [200, LISTED, 200, 200, 200, 200, 204, 200, 200, 200, 204, 204, 403, 403, 403, 200, 403, 403]
_NO_SHARE = [404, HIDDEN, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 403, 403, 403, 200, 403, 403]
_SYSADMIN = [200, LISTED, 200, 200, 200, 200, 204, 200, 200, 200, 204, 204, 201, 201, 201, 200, 200, 200]
EXPECTED: dict[str, list[Any]] = {
    "owner": [200, LISTED, 200, 200, 200, 200, 204, 200, 200, 200, 204, 204, 201, 201, 403, 200, 403, 403],
    "co_owner": _CO_OWNER,
    "user": [200, LISTED, 200, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403],
    "user_share": [200, LISTED, 200, 200, 200, 403, 403, 403, 200, 200, 204, 403, 403, 403, 403, 200, 403, 403],
    "team_member_of_co_owner_team": _CO_OWNER,
    "removed_team_member": _NO_SHARE,
    "system_administrator_no_share": _SYSADMIN,
    "system_administrator_with_user_share": _SYSADMIN,
    # Seeing a secret variable is not the right to bind it: without access to its store, no credential on it.
    "environment_maker_no_share": [404, HIDDEN, 404, 404, 200, 404, 404, 404, 404, 404, 404, 404, 403, 201, 403,
                                   200, 403, 403],
    "basic_user_no_share": _NO_SHARE,
    "user_of_another_environment": [404] * len(ACTIONS),
    "user_of_another_organization": [404] * len(ACTIONS),
    "machine_token": [403] * len(ACTIONS),
    "no_token": [401] * len(ACTIONS),
    "invalid_token": [401] * len(ACTIONS),
}
MACHINE_ENDPOINTS = [("heartbeat", "/machines/me/heartbeat", {}),
                     ("claim", "/machines/me/jobs/claim", None),
                     ("result", "/machines/me/jobs/{run_id}/result", {"exit_code": 0, "log": ""})]
MUTATING = {"delete", "share_co_owner", "share_user", "share_user_share", "unshare_user", "unshare_co_owner"}


@dataclass
class World:
    http: TestClient
    owner: Api
    callers: dict[str, Api]
    cred: str  # the credential the read actions look at
    shares: dict[str, str]  # principal -> role, as on ``cred``
    targets: dict[str, Api]  # who the share actions name
    names: Iterator[int] = field(default_factory=itertools.count)

    def fresh(self) -> str:
        """A new credential of the owner with the same shares as ``cred``."""
        cid = self.owner.ok(self.owner.post(self.owner.e("/credentials"), {
            "name": f"copy-{next(self.names)}", "username_variable": "robot_user",
            "password_variable": "robot_pass"}), 201)["id"]
        for principal, role in self.shares.items():
            self.owner.ok(self.owner.put(self.owner.e(f"/credentials/{cid}/shares/{principal}"), {"role": role}))
        return cid


def _other_organization(core: Any, env_name: str) -> str:
    """An organization no API creates, with an environment of the same name and its administrator."""
    token = "cfu_other-organization-admin-token"
    with core.db.transaction() as s:
        org = Organization(name="acme")
        s.add(org)
        s.flush()
        env = Environment(org_id=org.id, name=env_name)
        user = User(org_id=org.id, name="acme-admin", email="admin@acme.example")
        s.add_all([env, user])
        s.flush()
        tokens.issue(s, user.id, "acme", token=token)
        s.add(EnvironmentRoleGrant(user_id=user.id, env_id=env.id, role="system_administrator"))
    return token


def _machine(core: Any, env_id: str) -> str:
    token = "cfm_matrix-machine-token"
    with core.db.transaction() as s:
        s.add(Machine(env_id=env_id, name="robot-1", public_key="A" * 44, token_hash=token_hash(token)))
    return token


def _build(http: TestClient, core: Any) -> World:
    admin = Api(http, ADMIN_TOKEN)
    admin.env = admin.ok(admin.get("/environments"))["items"][0]["id"]
    admin.store("vault")
    admin.secret("vault", "robot-password", "Matrix-Pa55word")
    admin.text_var("robot_user", "robot@corp.example")
    admin.secret_var("robot_pass", "vault", "robot-password")
    owner = admin.user("owner", "environment_maker")
    # The owner may use the store, so may bind its secret into credentials; the other maker may not.
    admin.ok(admin.post(admin.e("/secret-stores/vault/access"), {"principal": owner.info["id"], "allowed": True}))
    u = {name: admin.user(name, "basic_user") for name in
         ("co_owner", "user", "user_share", "teammate", "ex_member", "basic", "target", "target_user", "target_co")}
    weak_admin = admin.user("weak_admin", "system_administrator")
    admin.ok(admin.post(admin.e("/teams"), {"name": "crew", "members": [u["teammate"].info["id"],
                                                                        u["ex_member"].info["id"]]}), 201)
    shares = {u["co_owner"].info["id"]: "co_owner", u["user"].info["id"]: "user",
              u["user_share"].info["id"]: "user_share", "crew": "co_owner", weak_admin.info["id"]: "user",
              u["target_user"].info["id"]: "user", u["target_co"].info["id"]: "co_owner"}
    world = World(http, owner, {}, "", shares, {"share": u["target"], "unshare_user": u["target_user"],
                                                "unshare_co_owner": u["target_co"]})
    world.cred = world.fresh()
    assert admin.delete(admin.e(f"/teams/crew/members/{u['ex_member'].info['id']}")).status_code == 204
    elsewhere = admin.ok(admin.post("/environments", {"name": "elsewhere"}), 201)
    other_env_user = admin.user("elsewhere", "environment_maker", env=elsewhere["id"])
    env = admin.env
    world.callers = {
        "owner": owner, "co_owner": u["co_owner"], "user": u["user"], "user_share": u["user_share"],
        "team_member_of_co_owner_team": u["teammate"], "removed_team_member": u["ex_member"],
        "system_administrator_no_share": admin.user("sysadmin", "system_administrator"),
        "system_administrator_with_user_share": weak_admin,
        "environment_maker_no_share": admin.user("maker", "environment_maker"),
        "basic_user_no_share": u["basic"],
        "user_of_another_environment": Api(http, other_env_user.token, env),
        "user_of_another_organization": Api(http, _other_organization(core, "default"), env),
        "machine_token": Api(http, _machine(core, env), env),
        "no_token": Api(http, "", env), "invalid_token": Api(http, "cfu_not-a-token", env),
    }
    return world


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          pg_available: bool) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp(f"matrix-{request.param}")
    if request.param == "postgresql" and not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with (contextmanager(pg_schema_url)() if request.param == "postgresql"
          else _const(f"sqlite:///{tmp / 'credflow.db'}")) as url:
        settings = Settings(data_dir=tmp / "data", database_url=url, bootstrap_token=ADMIN_TOKEN, run_workers=False)
        core = build_core(settings)
        bootstrap(core, ADMIN_TOKEN)
        try:
            with TestClient(create_app(settings, core)) as http:
                yield _build(http, core)
        finally:
            core.db.engine.dispose()


@contextmanager
def _const(value: str) -> Iterator[str]:
    yield value


# --- the actions --------------------------------------------------------------------------------------------------
def _status(resp: Any) -> int:
    return int(resp.status_code)


def _listed(w: World, api: Api, cid: str) -> Any:
    resp = api.get(api.e("/credentials"), params={"limit": 500})
    if resp.status_code != 200:
        return resp.status_code
    return LISTED if any(c["id"] == cid for c in resp.json()["items"]) else HIDDEN


def _share(role: str) -> Callable[[World, Api, str], Any]:
    return lambda w, api, cid: _status(api.put(api.e(f"/credentials/{cid}/shares/{w.targets['share'].info['id']}"),
                                               {"role": role}))


def _unshare(which: str) -> Callable[[World, Api, str], Any]:
    return lambda w, api, cid: _status(api.delete(api.e(f"/credentials/{cid}/shares/{w.targets[which].info['id']}")))


DO: dict[str, Callable[[World, Api, str], Any]] = {
    "view": lambda w, api, cid: _status(api.get(api.e(f"/credentials/{cid}"))),
    "list": _listed,
    "shares": lambda w, api, cid: _status(api.get(api.e(f"/credentials/{cid}/shares"))),
    "dependencies": lambda w, api, cid: _status(api.get(api.e(f"/credentials/{cid}/dependencies"))),
    "read_variable": lambda w, api, cid: _status(api.get(api.e("/environment-variables/robot_pass"))),
    "edit": lambda w, api, cid: _status(api.patch(api.e(f"/credentials/{cid}"), {"description": "edited"})),
    "delete": lambda w, api, cid: _status(api.delete(api.e(f"/credentials/{cid}"))),
    "share_co_owner": _share("co_owner"),
    "share_user": _share("user"),
    "share_user_share": _share("user_share"),
    "unshare_user": _unshare("unshare_user"),
    "unshare_co_owner": _unshare("unshare_co_owner"),
    "create_credential": lambda w, api, cid: _status(api.post(api.e("/credentials"), {
        "name": f"new-{next(w.names)}", "username_variable": "robot_user", "password_variable": "robot_pass"})),
    "create_variable": lambda w, api, cid: _status(api.post(api.e("/environment-variables"), {
        "schema_name": f"v{next(w.names)}", "type": "text", "value": "x"})),
    "create_team": lambda w, api, cid: _status(api.post(api.e("/teams"), {"name": f"team-{next(w.names)}"})),
    "list_teams": lambda w, api, cid: _status(api.get(api.e("/teams"))),
    "read_audit": lambda w, api, cid: _status(api.get(api.e("/audit"))),
    "store_access": lambda w, api, cid: _status(api.post(api.e("/secret-stores/vault/access"), {
        "principal": w.targets["share"].info["id"], "allowed": True})),
}
CASES = [(who, action, expected[i]) for who, expected in EXPECTED.items() for i, action in enumerate(ACTIONS)]


@pytest.mark.parametrize(("who", "action", "expected"), CASES, ids=[f"{w}-{a}" for w, a, _ in CASES])
def test_principal_kind_and_action(world: World, who: str, action: str, expected: Any) -> None:
    succeeds = expected in (200, 204)
    cid = world.fresh() if action in MUTATING and succeeds else world.cred
    assert DO[action](world, world.callers[who], cid) == expected


@pytest.mark.parametrize(("name", "path", "body"), MACHINE_ENDPOINTS, ids=[m[0] for m in MACHINE_ENDPOINTS])
def test_a_user_token_on_machine_endpoints(world: World, name: str, path: str, body: Any) -> None:
    served = world.http.get("/openapi.json").json()["paths"]
    assert f"/api/v1{path}" in served, f"POST {path} is not served: a renamed machine endpoint leaves the matrix"
    owner = world.owner
    resp = owner.post(path.replace("{run_id}", "0" * 32), body)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "user_token_not_allowed"


def test_the_matrix_covers_every_principal_kind_and_action() -> None:
    assert all(len(row) == len(ACTIONS) for row in EXPECTED.values())
    assert set(DO) == set(ACTIONS)
