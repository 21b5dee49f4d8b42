"""The real OpenID provider of the single sign-on tests: node's ``oidc-provider`` from npm, installed into
tests/identity/op (``npm ci``, by ``make install`` or here on first use) and started on a loopback port with a
configuration made here: one client, the device flow on, users with passwords and groups, and a signing key the
tests also hold (to play tokens the provider would never make: expired, of another issuer or nonce)."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.e2e.server import free_port

OP_DIR = Path(__file__).parent / "op"
CLIENT_ID = "credflow"
CLIENT_SECRET = "credflow-test-client-secret-0123456789"
USERS = [
    {"login": "ada", "password": "ada-Pa55word", "sub": "sub-ada", "email": "ada@corp.example",
     "email_verified": True, "name": "Ada Lovelace", "groups": ["credflow-admins"]},
    {"login": "bob", "password": "bob-Pa55word", "sub": "sub-bob", "email": "bob@corp.example",
     "email_verified": True, "name": "Bob Maker", "groups": ["credflow-makers", "staff"]},
    {"login": "eve", "password": "eve-Pa55word", "sub": "sub-eve", "email": "eve@corp.example",
     "email_verified": False, "name": "Eve Unverified", "groups": ["credflow-admins"]},
]


def ensure_installed() -> None:
    """``npm ci`` in tests/identity/op once (also for parallel test workers); skip when npm cannot do it."""
    if (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed for the OpenID provider of these tests (apt-get install nodejs npm)")
    with (Path(tempfile.gettempdir()) / "credflow-test-op-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (OP_DIR / "node_modules" / "oidc-provider").is_dir():
            return
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OP_DIR, capture_output=True, text=True,
                              timeout=300, check=False)
        if done.returncode != 0:
            pytest.skip(f"npm could not install oidc-provider (is the npm registry reachable?): {done.stderr[-500:]}")


@dataclass
class OpenIdProvider:
    issuer: str
    key: RSAKey
    users: list[dict[str, Any]] = field(default_factory=lambda: USERS)

    def settings(self, **more: Any) -> dict[str, Any]:
        """The credflow settings for this provider."""
        return {"oidc_issuer": self.issuer, "oidc_client_id": CLIENT_ID, "oidc_client_secret": CLIENT_SECRET,
                "oidc_name": "Test IdP", "oidc_scopes": "openid email profile groups", **more}

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        """An ID token with these claims, signed with the provider's key (or ``key``)."""
        key = key or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    def next_id_token(self, token: str) -> None:
        """The next token response carries this ID token instead of the provider's."""
        httpx.post(f"{self.issuer}/test/next-id-token", json={"id_token": token}).raise_for_status()


def new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True, auto_kid=True)


@contextmanager
def openid_provider(redirect_uris: list[str], tmp: Path, ttl: dict[str, int] | None = None
                    ) -> Iterator[OpenIdProvider]:
    ensure_installed()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    key = new_key()
    config = {"port": port, "issuer": issuer, "jwks": {"keys": [key.as_dict(private=True)]}, "users": USERS,
              "client": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris},
              "ttl": ttl or {}}
    path = tmp / f"op-{port}.json"
    path.write_text(json.dumps(config))
    log = (tmp / f"op-{port}.log").open("w")
    proc = subprocess.Popen([shutil.which("node") or "node", str(OP_DIR / "server.js"), str(path)], cwd=OP_DIR,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start: {(tmp / f'op-{port}.log').read_text()}")
            time.sleep(0.1)
        yield OpenIdProvider(issuer=issuer, key=key)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
