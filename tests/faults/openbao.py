"""A real OpenBao server with integrated (raft) storage in a directory, so what it holds survives a restart, on a
free loopback port: started, initialized and unsealed; then killed and started (and unsealed) again by the test."""

from __future__ import annotations

from pathlib import Path

import hvac
import hvac.exceptions
import requests

from tests.e2e.server import free_port
from tests.stores.conftest import Server, start, tool, wait_until


class RaftBao:
    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.port, cluster_port = workdir, free_port(), free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "bao.hcl"
        (workdir / "storage").mkdir(exist_ok=True)
        self.config.write_text(f"""
storage "raft" {{
  path = "{workdir / 'storage'}"
  node_id = "drill"
}}
listener "tcp" {{
  address = "127.0.0.1:{self.port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "{self.address}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
""")
        self.server: Server | None = None
        self.unseal_key = ""
        self.root_token = ""
        self.starts = 0

    def _health(self) -> int:
        return requests.get(f"{self.address}/v1/sys/health", timeout=1).status_code

    def start(self) -> None:
        """Start the server and make it serve: initialize it the first time, unseal it every time."""
        self.starts += 1
        self.server = start([tool("bao"), "server", f"-config={self.config}"], self.workdir,
                            f"openbao-{self.starts}", env={"HOME": str(self.workdir)})
        wait_until(lambda: self._health() in (200, 501, 503), "OpenBao listening")
        client = hvac.Client(url=self.address)
        if not self.root_token:
            init = client.sys.initialize(secret_shares=1, secret_threshold=1)
            self.unseal_key, self.root_token = init["keys"][0], init["root_token"]
            client.sys.submit_unseal_key(self.unseal_key)
            wait_until(lambda: self._health() == 200, "OpenBao active")
            self.root().sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
            wait_until(self._kv_ready, "the KV version 2 mount")
        else:
            client.sys.submit_unseal_key(self.unseal_key)
        wait_until(lambda: self._health() == 200, "OpenBao active")

    def _kv_ready(self) -> bool:
        try:
            self.root().secrets.kv.v2.read_configuration(mount_point="secret")
            return True
        except hvac.exceptions.VaultError:  # "Upgrading from non-versioned to versioned data" for a moment
            return False

    def kill(self) -> None:
        """SIGKILL: the vault is gone at once (a clean stop takes OpenBao a second or more)."""
        if self.server is not None:
            self.server.process.kill()
            self.server.process.wait()
            self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token)
