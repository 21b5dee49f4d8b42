"""Verified rotation, end to end: a real server process and a real ``credflow agent run``. A credential names a
verification (a desktop flow and one of its connections); a new password is first given to a real run of that
flow, and only when it exits 0 do the credential's connections move to it. The flow here plays the target
system: it accepts the passwords listed in a file the test controls."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import pg_schema_url
from tests.machines.procs import agents, register_agents, server

TOKEN = "cfu_verify-admin-token-0123456789abcdef"
OLD, NEW, NEWER = "Old-Pa55word-1!", "New-Pa55word-2!", "Newer-Pa55word-3!"
# The target system: the password is good when it is one of the lines of the file.
CHECK = ("import os, sys; ok = open(sys.argv[1]).read().split(); "
         "sys.exit(0 if os.environ['CREDFLOW_PASSWORD'] in ok else 1)")
PROVE = "import hashlib, os; print('pass-sha256', hashlib.sha256(os.environ['CREDFLOW_PASSWORD'].encode()).hexdigest())"


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class Live:
    url: str
    root: Path


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_available: bool
         ) -> Iterator[Live]:
    root = tmp_path_factory.mktemp(f"verify-{request.param}")
    (root / "logs").mkdir()
    if request.param == "sqlite":
        with server(root / "data", root / "logs" / "server.log", TOKEN) as url:
            yield Live(url, root)
        return
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = pg_schema_url()
    try:
        with server(root / "data", root / "logs" / "server.log", TOKEN, next(schema)) as url:
            yield Live(url, root)
    finally:
        schema.close()


class Scene:
    """An environment of its own: a builtin secret, a credential with two connections on one real machine, the
    verify flow (reading ``accepted``) and a flow that prints the hash of the password it receives."""

    def __init__(self, live: Live, name: str) -> None:
        self.live, self.accepted = live, live.root / f"{name}-accepted.txt"
        self.accepted.write_text(OLD + "\n")
        self.http = httpx.Client(base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=30)
        self.env = self.call("POST", "/environments", {"name": name})["id"]
        token = self.call("POST", "/ENV/machine-registrations", {})["registration_token"]
        self.state = live.root / f"{name}-pc"
        register_agents(live.url, [(token, f"{name}-pc", self.state)])
        machine = self.call("GET", "/ENV/machines")["items"][0]["id"]
        self.call("POST", "/ENV/secret-stores", {"name": "vault", "kind": "builtin"})
        self.call("PUT", "/ENV/secret-stores/vault/secrets/robot", {"value": OLD})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "robot_user", "type": "text",
                                                         "value": "robot@corp.example"})
        self.call("POST", "/ENV/environment-variables", {"schema_name": "robot_pass", "type": "secret",
                                                         "secret_reference": {"store": "vault", "name": "robot"}})
        self.cred = self.call("POST", "/ENV/credentials", {"name": "Robot", "username_variable": "robot_user",
                                                           "password_variable": "robot_pass"})["id"]
        self.conns = [self.call("POST", "/ENV/connections", {"name": n, "target": {"machine": machine},
                                                             "credential": self.cred})["id"]
                      for n in ("verifier", "everyday")]
        self.check = self.call("POST", "/ENV/desktop-flows", {"name": "check-login", "command": [
            sys.executable, "-c", CHECK, str(self.accepted)]})["id"]
        self.prove = self.call("POST", "/ENV/desktop-flows", {"name": "prove",
                                                              "command": [sys.executable, "-c", PROVE]})["id"]

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        resp = self.http.request(method, path.replace("ENV", f"environments/{getattr(self, 'env', '')}"), json=body)
        assert resp.status_code == status if status else resp.status_code < 400, resp.text
        return resp.json() if resp.content else None

    def verification(self) -> dict[str, Any]:
        return self.call("GET", f"/ENV/credentials/{self.cred}")["verification"]  # type: ignore[no-any-return]

    def wait_verification(self, status: str, version: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.verification()
            if (got["status"], got["version"]) == (status, version) or time.monotonic() > deadline:
                assert (got["status"], got["version"]) == (status, version), got
                return got
            time.sleep(0.2)

    def versions(self) -> list[str]:
        return [self.call("GET", f"/ENV/connections/{c}")["secret_version"] for c in self.conns]

    def proved(self) -> list[tuple[str, str]]:
        """Run the prove flow on every connection: (hash of the password it got, version) per connection."""
        ids = [self.call("POST", "/ENV/runs", {"desktop_flow": self.prove, "connection": c})["id"]
               for c in self.conns]
        deadline = time.monotonic() + 60
        while True:
            runs = [self.call("GET", f"/ENV/runs/{r}") for r in ids]
            if all(r["status"] in ("succeeded", "failed") for r in runs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert all(r["status"] == "succeeded" for r in runs), runs
        return [(r["log"].split("pass-sha256 ")[1].split()[0], r["secret_version"]) for r in runs]

    def audit(self, action: str) -> list[dict[str, Any]]:
        items = self.call("GET", f"/ENV/audit?action={action}&limit=100")["items"]
        return [r for r in items if r["action"] == action]


def test_a_failing_verification_keeps_every_run_on_the_old_password_until_verify_passes(live: Live) -> None:
    scene = Scene(live, "verify-fails")
    set_to = scene.call("PATCH", f"/ENV/credentials/{scene.cred}",
                        {"verification": {"desktop_flow": "check-login", "connection": "verifier"}})["verification"]
    assert set_to["desktop_flow"] == scene.check and set_to["connection"] == scene.conns[0]
    assert (set_to["status"], set_to["verified_version"]) == (None, "1")
    with agents([scene.state], live.root / "logs"):
        scene.call("PUT", "/ENV/secret-stores/vault/secrets/robot", {"value": NEW})  # the target refuses it
        failed = scene.wait_verification("failed", "2")
        assert failed["verified_version"] == "1" and "exited 1" in failed["detail"] and failed["checked_at"]
        verifying = scene.call("GET", f"/ENV/runs/{failed['run']}")
        assert (verifying["status"], verifying["secret_version"], verifying["connection"]) == (
            "failed", "2", scene.conns[0])  # the verification run itself got the new version
        assert scene.versions() == ["1", "1"]
        assert scene.proved() == [(_sha(OLD), "1")] * 2
        assert NEW not in str(scene.audit("credential.verification_failed"))

        scene.accepted.write_text(f"{OLD}\n{NEW}\n")  # the target now takes the new password: verify on demand
        pending = scene.call("POST", f"/ENV/credentials/{scene.cred}/verify", status=202)
        assert (pending["status"], pending["version"], pending["verified_version"]) == ("pending", "2", "1")
        assert pending["run"] != failed["run"]
        scene.wait_verification("passed", "2")
        assert scene.versions() == ["2", "2"]
        assert scene.proved() == [(_sha(NEW), "2")] * 2
    [passed] = scene.audit("credential.verification_passed")
    assert passed["detail"]["from_version"] == "1" and passed["detail"]["to_version"] == "2"
    assert passed["detail"]["connections_updated"] == 2  # every connection moved at once, in one record


def test_a_passing_verification_moves_every_connection_and_without_one_rotation_is_as_before(live: Live) -> None:
    scene = Scene(live, "verify-passes")
    scene.call("PATCH", f"/ENV/credentials/{scene.cred}",
               {"verification": {"desktop_flow": scene.check, "connection": scene.conns[0]}})
    scene.accepted.write_text(f"{OLD}\n{NEW}\n")
    with agents([scene.state], live.root / "logs"):
        scene.call("PUT", "/ENV/secret-stores/vault/secrets/robot", {"value": NEW})
        scene.wait_verification("passed", "2")
        assert scene.versions() == ["2", "2"]
        assert scene.proved() == [(_sha(NEW), "2")] * 2
        cleared = scene.call("PATCH", f"/ENV/credentials/{scene.cred}", {"verification": None})
        assert cleared["verification"] is None
        scene.call("PUT", "/ENV/secret-stores/vault/secrets/robot", {"value": NEWER})  # not checked: moves at once
        deadline = time.monotonic() + 10
        while scene.versions() != ["3", "3"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scene.proved() == [(_sha(NEWER), "3")] * 2
    assert len(scene.audit("credential.verification_started")) == 1
