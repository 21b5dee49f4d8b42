"""Real backends for the store tests, each on a free loopback port, started and stopped by the tests:
an OpenBao dev server, a moto server (IAM enforced), the Key Vault wire stand-in, and a throttling AWS stub."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import hvac
import pytest
import requests

from tests.e2e.server import free_port
from tests.stores.akv_wire import KeyVaultWire

AWS_REGION = "eu-west-1"


def tool(name: str) -> str:
    """A command installed with the dev dependencies: next to this Python, else on PATH."""
    beside = Path(sys.prefix) / "bin" / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not become ready within {timeout} s")


def _accepts_connections(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(argv: list[str], workdir: Path, name: str, env: dict[str, str] | None = None) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env={**os.environ, **(env or {})}
        )
    return Server(process, log)


# --- OpenBao ---------------------------------------------------------------------------------------------
@dataclass
class OpenBao:
    address: str
    root_token: str
    server: Server

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token)


def start_openbao(workdir: Path) -> OpenBao:
    port, token = free_port(), secrets.token_hex(16)
    argv = [tool("bao"), "server", "-dev", f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token"]
    server = start(argv, workdir, f"openbao-{port}", env={"HOME": str(workdir)})
    address = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{address}/v1/sys/health", timeout=1).status_code == 200, "OpenBao")
    except TimeoutError:
        server.stop()
        raise
    return OpenBao(address, token, server)


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    bao = start_openbao(tmp_path_factory.mktemp("openbao"))
    # Vault sends Retry-After with a rate-limit quota's 429 only with this on.
    bao.root().write("sys/quotas/config", enable_rate_limit_response_headers=True)
    yield bao
    bao.server.stop()


# --- moto ------------------------------------------------------------------------------------------------
@dataclass
class Moto:
    endpoint: str
    admin_keys: tuple[str, str]
    denied_keys: tuple[str, str]
    server: Server

    def admin(self) -> Any:
        key_id, secret_key = self.admin_keys
        return boto3.session.Session().client(
            "secretsmanager", region_name=AWS_REGION, endpoint_url=self.endpoint,
            aws_access_key_id=key_id, aws_secret_access_key=secret_key,
        )


# moto enforces IAM after this many requests: exactly those that make the two users below.
_SETUP_REQUESTS = 5


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    port = free_port()
    server = start([tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], tmp_path_factory.mktemp("moto"),
                   "moto", env={"INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS)})
    try:
        wait_until(lambda: _accepts_connections(port), "moto")
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.session.Session().client("iam", region_name=AWS_REGION, endpoint_url=endpoint,
                                             aws_access_key_id="setup", aws_secret_access_key="setup")
        everything = {"Version": "2012-10-17",
                      "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.create_user(UserName="credflow-admin")
        iam.put_user_policy(UserName="credflow-admin", PolicyName="all", PolicyDocument=json.dumps(everything))
        admin = iam.create_access_key(UserName="credflow-admin")["AccessKey"]
        iam.create_user(UserName="credflow-no-policy")  # IAM denies what no policy allows
        denied = iam.create_access_key(UserName="credflow-no-policy")["AccessKey"]
        yield Moto(endpoint, (admin["AccessKeyId"], admin["SecretAccessKey"]),
                   (denied["AccessKeyId"], denied["SecretAccessKey"]), server)
    finally:
        server.stop()


class _ThrottlingAws(BaseHTTPRequestHandler):
    """Answers every AWS JSON-protocol call as Secrets Manager does when over its request quota."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-ErrorType", "ThrottlingException")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def throttling_aws_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ThrottlingAws)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


# --- Azure Key Vault wire stand-in -----------------------------------------------------------------------
@dataclass(frozen=True)
class AzureApp:
    client_id: str
    client_secret: str


@dataclass
class Azure:
    wire: KeyVaultWire
    reader: AzureApp
    stranger: AzureApp


@pytest.fixture(scope="session")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azure]:
    wire = KeyVaultWire("72f988bf-86f1-41af-91ab-2d7cd011db47", tmp_path_factory.mktemp("akv"))
    reader = AzureApp("11111111-aaaa-4000-8000-000000000001", secrets.token_urlsafe(16))
    stranger = AzureApp("22222222-bbbb-4000-8000-000000000002", secrets.token_urlsafe(16))
    wire.add_app(reader.client_id, reader.client_secret, may_read=True)
    wire.add_app(stranger.client_id, stranger.client_secret, may_read=False)
    yield Azure(wire, reader, stranger)
    wire.stop()
