"""A secret variable pointed at another secret moves the connections of its credentials in the same transaction,
through the services alone: no app, no listener, no worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tests.conftest import ADMIN_TOKEN

from credflow.crypto.sealing import new_key_pair
from credflow.services.access import authz, users
from credflow.services.automation import connections, machines
from credflow.services.catalog import credentials, variables
from credflow.services.core import Actor, Core
from credflow.services.secrets import connection_state, secret_stores


@dataclass
class Setup:
    actor: Actor
    env: str
    conn: str


def _credential_in_use(core: Core) -> Setup:
    """A builtin store with ``old-pass`` at version 1 and ``new-pass`` at version 2, a credential whose password
    is ``old-pass`` and a connection of it on a machine, all made by the services."""
    with core.db.read() as s:
        actor = authz.authenticate(s, ADMIN_TOKEN)
    env = users.list_environments(core, actor)["items"][0]["id"]
    secret_stores.create_store(core, actor, env, "vault", "builtin", None, {})
    secret_stores.put_secret(core, actor, env, "vault", "old-pass", "first")
    secret_stores.put_secret(core, actor, env, "vault", "new-pass", "one")
    secret_stores.put_secret(core, actor, env, "vault", "new-pass", "two")
    variables.create_variable(core, actor, env, "user", None, "text", "robot", None)
    variables.create_variable(core, actor, env, "pass", None, "secret", None, {"store": "vault", "name": "old-pass"})
    cred = credentials.create_credential(core, actor, env, "robot", None, "user", "pass")
    reg = machines.create_registration(core, actor, env)
    _, public = new_key_pair()
    machine = machines.register_machine(core, reg["registration_token"], "robot-1", public)
    conn = connections.create_connection(core, actor, env, "c1", {"machine": machine["machine_id"]}, cred["id"])
    assert conn["secret_version"] == "1"
    return Setup(actor, env, conn["id"])


def _connection(core: Core, setup: Setup) -> dict[str, Any]:
    return connections.get_connection(core, setup.actor, setup.env, setup.conn)


def test_a_changed_reference_moves_the_connections_without_the_app(core: Core) -> None:
    assert not core.hooks  # built by build_core and bootstrap only: nobody listens to anything
    setup = _credential_in_use(core)
    variables.update_variable(core, setup.actor, setup.env, "pass",
                              {"secret_reference": {"store": "vault", "name": "new-pass"}})
    assert _connection(core, setup)["secret_version"] == "2"


def test_when_the_connections_cannot_move_the_reference_does_not_change(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = _credential_in_use(core)

    def broken(*_: Any, **__: Any) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(connection_state, "follow_reference", broken)
    with pytest.raises(RuntimeError):
        variables.update_variable(core, setup.actor, setup.env, "pass",
                                  {"secret_reference": {"store": "vault", "name": "new-pass"}})
    var = variables.get_variable(core, setup.actor, setup.env, "pass")
    assert var["secret_reference"]["name"] == "old-pass"
    assert _connection(core, setup)["secret_version"] == "1"
