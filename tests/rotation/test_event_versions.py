"""An event's version is a hint; the vault is the truth. For every kind of store, against the real vault (an OpenBao
dev server, a moto server, the Key Vault wire stand-in, credflow's own builtin store), events posted to the webhook
naming a future, unknown, old, another secret's or a malformed version never fail the webhook and never break a
connection: the connections stay ``connected`` on the vault's current version, and so does the next run. Only the
vault saying the secret is gone turns them ``secret_unreadable``, and the notify action brings them back once the
secret is written again."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from sqlalchemy import update
from tests.conftest import Api
from tests.rotation.conftest import Machine, audit, connect, connection, register_machine, run_now, wait_for
from tests.stores import conftest as backends

from credflow.domain.statuses import ConnectionStatus
from credflow.persistence.tables import BuiltinSecret
from credflow.services.core import Core
from credflow.stores.azure_keyvault import AzureKeyVaultConfig, AzureKeyVaultPlugin, AzureKeyVaultStore
from credflow.stores.base import StoreConfig, StoreContext

HOOK = "/events/eventgrid"
NOTIFY = "/actions/NotifyEnvironmentVariableSecretChange"
CONNECTED, UNREADABLE = ConnectionStatus.CONNECTED, ConnectionStatus.SECRET_UNREADABLE

# The real backends, started once for the session when a test of their kind first needs them.
openbao, moto, azure = backends.openbao, backends.moto, backends.azure


class Backend(Protocol):
    """A kind of store seen from outside credflow: its store, and the vault itself, written to directly."""

    kind: str

    def make_store(self, admin: Api) -> dict[str, Any]: ...

    def write(self, name: str, value: str) -> str: ...

    def delete(self, name: str) -> None: ...

    def unknown_version(self, current: str) -> str:
        """A version in this vault's own form that the secret does not have (yet)."""
        ...


@dataclass
class Builtin:
    admin: Api
    core: Core
    kind: str = "builtin"

    def make_store(self, admin: Api) -> dict[str, Any]:
        return admin.store("vault")

    def write(self, name: str, value: str) -> str:
        return str(self.admin.secret("vault", name, value)["version"])

    def delete(self, name: str) -> None:
        with self.core.db.transaction() as s:
            s.execute(update(BuiltinSecret).where(BuiltinSecret.name == name).values(enabled=False))

    def unknown_version(self, current: str) -> str:
        return str(int(current) + 100)


@dataclass
class OpenBaoKv:
    bao: backends.OpenBao
    kind: str = "hashicorp-vault"

    def make_store(self, admin: Api) -> dict[str, Any]:
        return admin.store("bao", "hashicorp-vault", vault_url=self.bao.address, config={
            "address": self.bao.address, "token": self.bao.root_token, "poll_interval_seconds": 0})

    def write(self, name: str, value: str) -> str:
        made = self.bao.root().secrets.kv.v2.create_or_update_secret(path=name, secret={"value": value})
        return str(made["data"]["version"])

    def delete(self, name: str) -> None:  # `bao kv delete`: the metadata stays, its current version is deleted
        self.bao.root().secrets.kv.v2.delete_latest_version_of_secret(path=name)

    def unknown_version(self, current: str) -> str:
        return str(int(current) + 100)


@dataclass
class SecretsManager:
    aws: backends.Moto
    kind: str = "aws-secretsmanager"

    def make_store(self, admin: Api) -> dict[str, Any]:
        key_id, secret_key = self.aws.admin_keys
        return admin.store("aws", "aws-secretsmanager", vault_url=self.aws.endpoint, config={
            "region": backends.AWS_REGION, "endpoint_url": self.aws.endpoint, "access_key_id": key_id,
            "secret_access_key": secret_key, "poll_interval_seconds": 0})

    def write(self, name: str, value: str) -> str:
        client: Any = self.aws.admin()
        try:
            if client.describe_secret(SecretId=name).get("DeletedDate"):
                client.restore_secret(SecretId=name)  # AWS takes no new value for a secret marked for deletion
        except client.exceptions.ResourceNotFoundException:
            return str(client.create_secret(Name=name, SecretString=value)["VersionId"])
        return str(client.put_secret_value(SecretId=name, SecretString=value)["VersionId"])

    def delete(self, name: str) -> None:  # `aws secretsmanager delete-secret`: gone now, recoverable for 7 days
        self.aws.admin().delete_secret(SecretId=name, RecoveryWindowInDays=7)

    def unknown_version(self, current: str) -> str:
        return str(uuid.uuid4())


@dataclass
class KeyVault:
    akv: backends.Azure
    kind: str = "azure-keyvault"

    def make_store(self, admin: Api) -> dict[str, Any]:
        wire, app = self.akv.wire, self.akv.reader
        return admin.store("akv", "azure-keyvault", vault_url=wire.vault_url, config={
            "tenant_id": wire.tenant_id, "client_id": app.client_id, "client_secret": app.client_secret,
            "authority_host": wire.authority_host, "ca_bundle": str(wire.ca_bundle), "poll_interval_seconds": 0})

    def write(self, name: str, value: str) -> str:
        return self.akv.wire.set_secret(name, value)

    def delete(self, name: str) -> None:
        self.akv.wire.delete_secret(name)

    def unknown_version(self, current: str) -> str:
        return uuid.uuid4().hex


class LoopbackKeyVaultPlugin(AzureKeyVaultPlugin):
    """The Key Vault plugin with the SDK's check of the vault's challenge off, since the stand-in vault is
    127.0.0.1 and not a host under vault.azure.net; everything else is the plugin's."""

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> AzureKeyVaultStore:
        assert isinstance(config, AzureKeyVaultConfig)
        return AzureKeyVaultStore(config, context.vault_url, verify_challenge_resource=False,
                                  allow_ambient_credentials=context.allow_ambient_credentials)


@pytest.fixture(params=["builtin", "hashicorp-vault", "aws-secretsmanager", "azure-keyvault"])
def backend(request: pytest.FixtureRequest, admin: Api, core: Core) -> Backend:
    if request.param == "builtin":
        return Builtin(admin, core)
    if request.param == "hashicorp-vault":
        return OpenBaoKv(request.getfixturevalue("openbao"))
    if request.param == "aws-secretsmanager":
        return SecretsManager(request.getfixturevalue("moto"))
    core.registry.plugins["azure-keyvault"] = LoopbackKeyVaultPlugin
    return KeyVault(request.getfixturevalue("azure"))


@dataclass
class InUse:
    """A secret in the vault at ``first``, a credential on it, and two connections whose runs receive it."""

    backend: Backend
    store: dict[str, Any]
    name: str
    first: str
    conns: list[str]
    machine: Machine
    key: str

    def event(self, version: Any, **over: Any) -> dict[str, Any]:
        """SecretNewVersionCreated as Event Grid sends it, naming ``version`` (any JSON value)."""
        url = self.store["vault_url"]
        return {"id": uuid.uuid4().hex, "topic": url, "subject": self.name,
                "eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "eventTime": "2024-05-01T10:00:00Z",
                "data": {"Id": f"{url}/secrets/{self.name}/{version}", "ObjectType": "Secret",
                         "ObjectName": self.name, "Version": version},
                "dataVersion": "1", "metadataVersion": "1", **over}

    def deliver(self, admin: Api, *events: dict[str, Any], content_type: str = "application/json") -> dict[str, int]:
        resp = admin.http.post(HOOK, params={"key": self.key}, content=json.dumps(list(events)),
                               headers={"content-type": content_type})
        assert resp.status_code == 200, (resp.status_code, resp.text[:300])
        got: dict[str, int] = resp.json()
        return got

    def serving(self, admin: Api, version: str, password: str, flow: str) -> None:
        """Every connection is connected on ``version`` with no vault error, and a run receives ``password``."""
        seen = [connection(admin, c) for c in self.conns]
        assert [(c["status"], c["secret_version"], c["secret_error"]) for c in seen] == [
            (CONNECTED, version, None)] * len(self.conns)
        got = run_now(admin, self.machine, self.conns[0], flow)["credential"]
        assert (got["password"], got["version"]) == (password, version)


def in_use(admin: Api, backend: Backend) -> InUse:
    store = backend.make_store(admin)
    name = f"robot-{uuid.uuid4().hex[:10]}"
    first = backend.write(name, "first-password")
    admin.text_var("robot_user", "robot@corp.example")
    admin.secret_var("robot_pass", store["name"], name)
    cred = admin.credential("Robot login", "robot_user", "robot_pass")
    machine = register_machine(admin)
    conns = [connect(admin, machine, cred["id"], f"c{i}")["id"] for i in range(2)]
    key = admin.ok(admin.post(admin.e("/event-keys")), 201)["key"]
    setup = InUse(backend, store, name, first, conns, machine, key)
    assert {(connection(admin, c)["status"], connection(admin, c)["secret_version"]) for c in conns} == {
        (CONNECTED, first)}
    return setup


def settled(admin: Api) -> None:
    """Wait until the worker has applied every event (retries included)."""
    wait_for(lambda: admin.ok(admin.get(admin.e("/rotation")))["pending_events"] == 0, timeout=10)


def test_future_unknown_and_old_versions_leave_connections_on_the_vaults_current_version(
        admin: Api, backend: Backend, flow: str) -> None:
    setup = in_use(admin, backend)
    other = backend.write(f"other-{uuid.uuid4().hex[:10]}", "someone else's password")
    second = backend.write(setup.name, "second-password")
    for what, version in [("a future version", backend.unknown_version(second)),
                          ("a version of another secret", other),
                          ("the old version", setup.first)]:
        got = setup.deliver(admin, setup.event(version))
        assert got["accepted"] + got["duplicates"] == 1, what  # builtin and Vault: another secret's "1" is old
        settled(admin)
        setup.serving(admin, second, "second-password", flow)
    assert not audit(admin, "secret.unreadable")
    moves = [(r["detail"]["from_version"], r["detail"]["to_version"]) for r in audit(admin, "secret.version_changed")]
    assert moves == [(setup.first, second)]  # forward once, to the vault's current version, never back


MALFORMED: list[Any] = [
    "", "   ", "x" * 10_000, "not-a-version", "-1", "0", "1.5", "v2 OR 1=1", "../../../etc", "\uff12", "2\u0000",
    "\ud800", 12345678901234567890, True, None, {"v": 2},
]


def test_a_malformed_version_is_never_a_5xx_and_makes_the_worker_ask_the_vault(
        admin: Api, backend: Backend, flow: str) -> None:
    setup = in_use(admin, backend)
    for n, version in enumerate(MALFORMED):
        # A new version in the vault each time (the builtin store raises its own event for it): whatever the
        # malformed version says, the connections end on the vault's current version, connected.
        current = backend.write(setup.name, f"password-{n}")
        got = setup.deliver(admin, setup.event(version))
        assert got["accepted"] + got["duplicates"] == 1, version
        settled(admin)
        setup.serving(admin, current, f"password-{n}", flow)
    assert not audit(admin, "secret.unreadable")


def test_a_secret_deleted_in_the_vault_still_turns_connections_unreadable(
        admin: Api, backend: Backend, flow: str) -> None:
    setup = in_use(admin, backend)
    backend.delete(setup.name)
    assert setup.deliver(admin, setup.event(backend.unknown_version(setup.first)))["accepted"] == 1
    settled(admin)
    seen = [connection(admin, c) for c in setup.conns]
    assert [(c["status"], c["secret_error"]) for c in seen] == [(UNREADABLE, "secret_not_found")] * 2
    assert audit(admin, "secret.unreadable")[-1]["detail"]["reason"] == "secret_not_found"
    admin.ok(admin.post(admin.e("/runs"), {"desktop_flow": flow, "connection": setup.conns[0]}), 201)
    assert setup.machine.claim() is None  # the run fails: nothing is delivered
    back = backend.write(setup.name, "reborn-password")
    admin.ok(admin.post(admin.e(NOTIFY), {"KeyVaultUrl": setup.store["vault_url"], "SecretName": setup.name}), 202)
    settled(admin)
    setup.serving(admin, back, "reborn-password", flow)


# --- kind-independent: the webhook and the outbox ---------------------------------------------------------
def test_malformed_names_vaults_and_ids_are_never_a_5xx(admin: Api, core: Core, flow: str) -> None:
    setup = in_use(admin, Builtin(admin, core))
    url = setup.store["vault_url"]
    ignored = [
        setup.event("2", subject="robot\u0000", data={"ObjectName": "robot\u0000", "Version": "2"}),
        setup.event("2", subject="n" * 600, data={"ObjectName": "n" * 600, "Version": "2"}),
        setup.event("2", subject="\ud800", data={"Version": "2"}),
        setup.event("2", topic=f"{url}\u0000", data={"Id": f"https://[bad/secrets/{setup.name}/2", "Version": "2"}),
        setup.event("2", topic="https://[::1/x", data={"Version": "2"}),
        setup.event("2", topic="v" * 3000, data={"Version": "2"}),
    ]
    for event in ignored:
        assert setup.deliver(admin, event) == {"accepted": 0, "duplicates": 0, "ignored": 1}, event["subject"][:20]
    without_version = {"specversion": "1.0", "id": "\ud800", "source": url, "subject": setup.name,
                       "type": "Microsoft.KeyVault.SecretNewVersionCreated",
                       "data": json.dumps({"version": "\u0000" * 300})}
    assert setup.deliver(admin, without_version, content_type="application/cloudevents+json")["accepted"] == 1
    settled(admin)
    setup.serving(admin, setup.first, "first-password", flow)


def test_a_delivery_naming_a_builtin_version_before_it_is_written_does_not_hide_the_write(
        admin: Api, core: Core, flow: str) -> None:
    setup = in_use(admin, Builtin(admin, core))
    early = setup.deliver(admin, setup.event("2"), setup.event(" 3 "))
    assert early == {"accepted": 2, "duplicates": 0, "ignored": 0}
    settled(admin)
    setup.serving(admin, "1", "first-password", flow)
    assert admin.secret("vault", setup.name, "second-password")["version"] == "2"
    assert admin.secret("vault", setup.name, "third-password")["version"] == "3"
    wait_for(lambda: {connection(admin, c)["secret_version"] for c in setup.conns} == {"3"})
    setup.serving(admin, "3", "third-password", flow)
