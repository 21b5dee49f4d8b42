"""The findings a vault's trouble raises, through the API: a secret the vault no longer has makes its connections
unreadable (critical), a vault that fails makes the secret stale (warning), and both clear when the vault has it
again. The vault is the rotation tests' in-memory one, which the test breaks and mends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from credflow.services.core import Core
from credflow.stores.base import SecretValue, StoreConfig, StoreContext, StoreUnavailable
from tests.conftest import Api
from tests.health.conftest import findings, wait_for
from tests.rotation.conftest import (
    VAULTS,
    CountingPlugin,
    CountingStore,
    CountingVault,
    connect,
    register_machine,
    vault,
    vault_store,
)

__all__ = ["vault"]
NOTIFY = "/actions/NotifyEnvironmentVariableSecretChange"


def _world(admin: Api, vault: CountingVault) -> dict[str, Any]:
    vault.write("robot-pw", "first")
    vault_store(admin, vault)
    admin.text_var("robot_user", "robot")
    admin.secret_var("robot_pass", "kv", "robot-pw")
    cred = admin.credential("Robot login", "robot_user", "robot_pass")
    conn = connect(admin, register_machine(admin), cred["id"], "robot on pc")
    return {"cred": cred["id"], "conn": conn["id"]}


def _notify(admin: Api, vault: CountingVault) -> None:
    admin.ok(admin.post(admin.e(NOTIFY), {"KeyVaultUrl": vault.url, "SecretName": "robot-pw"}), 202)


def _seen(admin: Api) -> set[tuple[str, str, str | None, str | None]]:
    return {(f["severity"], f["kind"], f.get("credential"), f.get("connection")) for f in findings(admin)}


def test_a_secret_gone_from_the_vault_makes_its_connections_unreadable(admin: Api, vault: CountingVault) -> None:
    w = _world(admin, vault)
    assert _seen(admin) == set()
    kept = vault.delete("robot-pw")
    _notify(admin, vault)
    wait_for(lambda: _seen(admin) == {("critical", "unreadable", w["cred"], w["conn"])})
    [found] = findings(admin)
    assert found["connection_name"] == "robot on pc" and "first" not in found["detail"]

    vault.restore("robot-pw", kept)
    _notify(admin, vault)
    wait_for(lambda: _seen(admin) == set())


def test_a_failing_vault_makes_the_secret_stale(admin: Api, vault: CountingVault) -> None:
    w = _world(admin, vault)
    vault.failure = StoreUnavailable("the vault is down")
    _notify(admin, vault)
    wait_for(lambda: ("warning", "stale", w["cred"], None) in _seen(admin))
    assert admin.ok(admin.get(admin.e("/health")))["counts"]["critical"] == 0  # the last good version serves

    vault.failure = None
    _notify(admin, vault)
    wait_for(lambda: _seen(admin) == set())


class _MadeLongAgo(CountingStore):
    """The in-memory vault, saying each version was made 40 days ago (as Key Vault's attributes.created would)."""

    def read(self, name: str, version: str | None = None) -> SecretValue:
        got = super().read(name, version)
        return SecretValue(got.value, got.version, created_at=datetime.now(UTC) - timedelta(days=40))


class _MadeLongAgoPlugin(CountingPlugin):
    kind: ClassVar[str] = "made-long-ago"

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> CountingStore:
        return _MadeLongAgo(VAULTS[context.vault_url])


def test_a_password_older_than_max_age_days_is_not_rotated(admin: Api, core: Core, vault: CountingVault) -> None:
    core.registry.plugins["made-long-ago"] = _MadeLongAgoPlugin  # type: ignore[assignment]
    vault.write("robot-pw", "first")
    admin.store("kv", "made-long-ago", vault_url=vault.url, config={"poll_interval_seconds": 0})
    admin.text_var("robot_user", "robot")
    admin.secret_var("robot_pass", "kv", "robot-pw")
    cred = admin.credential("Robot login", "robot_user", "robot_pass", max_age_days=30)
    assert _seen(admin) == {("warning", "not_rotated", cred["id"], None)}
    assert "40 day(s) ago" in findings(admin)[0]["detail"]
    admin.ok(admin.patch(admin.e(f"/credentials/{cred['id']}"), {"max_age_days": 60}))
    assert _seen(admin) == set()
