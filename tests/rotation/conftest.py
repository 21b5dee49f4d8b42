"""Rotation fixtures: a vault the test controls (and counts the reads of), a machine, connections, runs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from nacl.public import PrivateKey
from tests.conftest import Api, new_machine

from credflow.crypto.sealing import open_sealed
from credflow.services.core import Core
from credflow.stores.base import (
    PollingConfig,
    SecretNotFound,
    SecretValue,
    StoreConfig,
    StoreContext,
    StoreError,
)

VAULTS: dict[str, CountingVault] = {}


@dataclass
class CountingVault:
    """An in-memory vault: the test writes versions, breaks it, and counts what credflow asked."""

    url: str
    versions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    reads: list[tuple[str, str | None, float]] = field(default_factory=list)
    version_checks: int = 0
    failure: StoreError | None = None
    fail_reads: list[StoreError] = field(default_factory=list)  # raised by the next reads, one each
    read_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, name: str, value: str) -> str:
        version = uuid.uuid4().hex
        with self.lock:
            self.versions.setdefault(name, []).append((version, value))
        return version

    def delete(self, name: str) -> list[tuple[str, str]]:
        with self.lock:
            return self.versions.pop(name)

    def restore(self, name: str, versions: list[tuple[str, str]]) -> None:
        with self.lock:
            self.versions[name] = versions

    def read(self, name: str, version: str | None) -> SecretValue:
        with self.lock:
            self.reads.append((name, version, time.monotonic()))
            failure = self.fail_reads.pop(0) if self.fail_reads else self.failure
        time.sleep(self.read_delay)
        if failure is not None:
            raise failure
        for v, value in reversed(self.versions.get(name, [])):
            if version is None or v == version:
                return SecretValue(value, v)
        raise SecretNotFound(f"secret {name!r} version {version} not found")

    def current(self, name: str) -> str:
        with self.lock:
            self.version_checks += 1
            failure = self.failure
        if failure is not None:
            raise failure
        if not self.versions.get(name):
            raise SecretNotFound(f"secret {name!r} not found")
        return self.versions[name][-1][0]


class CountingStore:
    def __init__(self, vault: CountingVault) -> None:
        self.vault = vault

    def read(self, name: str, version: str | None = None) -> SecretValue:
        return self.vault.read(name, version)

    def current_version(self, name: str) -> str:
        return self.vault.current(name)


class CountingPlugin:
    kind: ClassVar[str] = "counting"
    Config: ClassVar[type[StoreConfig]] = PollingConfig

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> CountingStore:
        return CountingStore(VAULTS[context.vault_url])


@pytest.fixture
def vault(core: Core) -> CountingVault:
    """A fresh counting vault at https://kv-<random>.vault.azure.net, its kind registered in this core."""
    core.registry.plugins["counting"] = CountingPlugin  # type: ignore[assignment]
    v = CountingVault(f"https://kv-{uuid.uuid4().hex[:10]}.vault.azure.net")
    VAULTS[v.url] = v
    return v


def wait_for(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s (last: {got!r})")
        time.sleep(interval)


@dataclass
class Machine:
    api: Api  # signed in with the machine token
    id: str
    key: PrivateKey

    def claim(self) -> dict[str, Any] | None:
        resp = self.api.post("/machines/me/jobs/claim")
        if resp.status_code == 204:
            return None
        job = self.api.ok(resp)
        job["credential"] = json.loads(open_sealed(self.key, job["sealed_credential"]))
        return job  # type: ignore[no-any-return]

    def finish(self, run_id: str) -> None:
        self.api.ok(self.api.post(f"/machines/me/jobs/{run_id}/result", {"exit_code": 0, "log": "done"}))


def register_machine(admin: Api, name: str = "robot-1") -> Machine:
    return Machine(*new_machine(admin, name))


def connect(api: Api, machine: Machine, credential: str, name: str) -> dict[str, Any]:
    body = {"name": name, "target": {"machine": machine.id}, "credential": credential}
    return api.ok(api.post(api.e("/connections"), body), 201)  # type: ignore[no-any-return]


def connection(api: Api, conn_id: str) -> dict[str, Any]:
    return api.ok(api.get(api.e(f"/connections/{conn_id}")))  # type: ignore[no-any-return]


def versions(api: Api, conn_ids: list[str]) -> set[str | None]:
    return {connection(api, c)["secret_version"] for c in conn_ids}


def run_now(api: Api, machine: Machine, conn_id: str, flow: str) -> dict[str, Any]:
    """Queue a run of ``flow`` on the connection and claim it as the machine: what the flow process gets."""
    api.ok(api.post(api.e("/runs"), {"desktop_flow": flow, "connection": conn_id}), 201)
    job = machine.claim()
    assert job is not None
    machine.finish(job["run_id"])
    return job


@pytest.fixture
def flow(admin: Api) -> str:
    made = admin.ok(admin.post(admin.e("/desktop-flows"), {"name": "login", "command": ["true"]}), 201)
    return made["id"]  # type: ignore[no-any-return]


def vault_store(admin: Api, vault: CountingVault, name: str = "kv", poll: int = 0) -> dict[str, Any]:
    return admin.store(name, "counting", vault_url=vault.url, config={"poll_interval_seconds": poll})


def audit(admin: Api, action: str) -> list[dict[str, Any]]:
    page = admin.ok(admin.get(admin.e("/audit"), params={"action": action, "limit": 500}))
    return [r for r in page["items"] if r["action"] == action]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The event-version tests run every store kind on SQLite and the builtin store on PostgreSQL too: what a
    database adds (column limits, encodings) is the same whichever vault the version names, and the vault
    kinds are where the time goes."""
    dropped = [item for item in items if item.path.name == "test_event_versions.py"
               and (params := getattr(item, "callspec", None)) is not None
               and params.params.get("database_url") == "postgresql"
               and params.params.get("backend", "builtin") != "builtin"]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
