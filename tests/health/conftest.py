"""Health fixtures: the real vaults (OpenBao, moto, the Key Vault wire stand-in) and reading the health page."""

from __future__ import annotations

import queue
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from credflow.stores.azure_keyvault import AzureKeyVaultConfig, AzureKeyVaultPlugin, AzureKeyVaultStore
from credflow.stores.base import StoreConfig, StoreContext
from tests.conftest import Api
from tests.rotation.conftest import wait_for
from tests.stores import conftest as backends

openbao, moto, azure = backends.openbao, backends.moto, backends.azure

__all__ = ["LoopbackKeyVaultPlugin", "Receiver", "azure", "findings", "iso", "kinds", "moto", "openbao", "wait_for"]


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def findings(api: Api) -> list[dict[str, Any]]:
    return api.ok(api.get(api.e("/health")))["items"]  # type: ignore[no-any-return]


def kinds(api: Api) -> set[tuple[str, str | None]]:
    """(kind, credential) of each finding the caller sees."""
    return {(f["kind"], f.get("credential")) for f in findings(api)}


class Receiver:
    """A local HTTP server that keeps every POST; ``fail`` answers that many POSTs with 500 first."""

    def __init__(self) -> None:
        self.got: queue.Queue[dict[str, Any]] = queue.Queue()
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                failing = receiver.fail > 0
                receiver.fail -= 1 if failing else 0
                receiver.got.put({"headers": dict(self.headers), "body": body, "answered": 500 if failing else 200})
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0/B0/secret-part"

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.got.get(timeout=timeout)


class LoopbackKeyVaultPlugin(AzureKeyVaultPlugin):
    """The Key Vault plugin with the SDK's check of the vault's challenge off, since the stand-in vault is
    127.0.0.1 and not a host under vault.azure.net; everything else is the plugin's."""

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> AzureKeyVaultStore:
        assert isinstance(config, AzureKeyVaultConfig)
        return AzureKeyVaultStore(config, context.vault_url, verify_challenge_resource=False,
                                  allow_ambient_credentials=context.allow_ambient_credentials)
