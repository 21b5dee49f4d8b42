"""A loopback stand-in for Azure Key Vault and Microsoft Entra ID, speaking only their documented wire formats.

No Key Vault emulator exists, so the Azure store is tested against this, through the real SDKs
(azure-keyvault-secrets, azure-identity/MSAL). Three listeners:

- the vault (HTTPS): ``GET /secrets/{name}[/{version}]`` and ``GET /secrets/{name}/versions``, each with
  ``api-version``; a request without a valid token gets 401 and the challenge
  ``Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="https://vault.azure.net"``;
  a principal without secret Get gets 403, a missing secret 404 ``SecretNotFound``, a throttled name 429 with
  ``Retry-After``. Errors use Key Vault's ``{"error": {"code", "message"}}`` body.
- Microsoft Entra ID (HTTPS): OpenID discovery ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and
  the client-credentials grant ``POST /{tenant}/oauth2/v2.0/token``.
- the App Service managed identity endpoint (plain HTTP on loopback, as App Service has it):
  ``GET /msi/token?api-version=2019-08-01&resource=...`` with the ``X-IDENTITY-HEADER`` header.

TLS uses a self-signed certificate made at start; clients trust it through ``ca_bundle``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VAULT_RESOURCE = "https://vault.azure.net"


@dataclass(frozen=True)
class _Version:
    id: str
    value: str
    created: int
    expires: int | None = None  # attributes.exp, epoch seconds


class KeyVaultWire:
    def __init__(self, tenant_id: str, workdir: Path) -> None:
        self.tenant_id = tenant_id
        self.identity_header = secrets.token_hex(16)
        self.managed_identity_id = str(uuid.uuid4())
        self._apps: dict[str, str] = {}  # client_id -> client_secret
        self._readers: set[str] = set()  # principals with secret Get
        self._tokens: dict[str, tuple[str, str]] = {}  # access token -> (principal, resource)
        self._secrets: dict[str, list[_Version]] = {}
        self._throttled: dict[str, int] = {}  # name -> Retry-After seconds
        self._lock = threading.Lock()
        self.ca_bundle, key = _write_self_signed_cert(workdir)
        self._servers = [
            _serve(_VaultHandler, self, (self.ca_bundle, key)),
            _serve(_LoginHandler, self, (self.ca_bundle, key)),
            _serve(_IdentityHandler, self, None),
        ]

    @property
    def vault_url(self) -> str:
        return f"https://127.0.0.1:{self._servers[0].server_port}"

    @property
    def authority_host(self) -> str:
        return f"https://127.0.0.1:{self._servers[1].server_port}"

    @property
    def identity_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._servers[2].server_port}/msi/token"

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def add_app(self, client_id: str, client_secret: str, *, may_read: bool) -> None:
        with self._lock:
            self._apps[client_id] = client_secret
            if may_read:
                self._readers.add(client_id)

    def let_managed_identity_read(self) -> None:
        with self._lock:
            self._readers.add(self.managed_identity_id)

    def set_secret(self, name: str, value: str, expires: int | None = None) -> str:
        version = uuid.uuid4().hex
        with self._lock:
            self._secrets.setdefault(name, []).append(_Version(version, value, int(time.time()), expires))
        return version

    def delete_secret(self, name: str) -> None:
        """Delete every version, as ``DELETE /secrets/{name}`` does: reads answer 404 ``SecretNotFound`` after."""
        with self._lock:
            self._secrets.pop(name, None)

    def throttle(self, name: str, retry_after: int) -> None:
        with self._lock:
            self._throttled[name] = retry_after

    def issue_token(self, principal: str, resource: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (principal, resource)
        return {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def app_secret(self, client_id: str) -> str | None:
        with self._lock:
            return self._apps.get(client_id)

    def may_read(self, principal: str) -> bool:
        with self._lock:
            return principal in self._readers

    def retry_after(self, name: str) -> int | None:
        with self._lock:
            return self._throttled.get(name)

    def versions(self, name: str) -> list[_Version]:
        with self._lock:
            return list(self._secrets.get(name, []))

    def principal_for(self, authorization: str | None) -> str | None:
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            principal, resource = self._tokens.get(token, ("", ""))
        ok = scheme.lower() == "bearer" and resource.rstrip("/") == VAULT_RESOURCE
        return principal if ok else None


class _Handler(BaseHTTPRequestHandler):
    wire: KeyVaultWire

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_error_body(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"error": {"code": code, "message": message}}, headers)


class _VaultHandler(_Handler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if "api-version" not in parse_qs(url.query):
            return self.send_error_body(400, "BadParameter", "The api-version query parameter is required.")
        principal = self.wire.principal_for(self.headers.get("Authorization"))
        if principal is None:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{self.wire.tenant_id}", '
                f'resource="{VAULT_RESOURCE}"'
            )
            return self.send_error_body(
                401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                {"WWW-Authenticate": challenge},
            )
        if not self.wire.may_read(principal):
            message = f"The user, group or application '{principal}' does not have secrets get permission."
            body = {"error": {"code": "Forbidden", "message": message, "innererror": {"code": "AccessDenied"}}}
            return self.send_json(403, body)
        parts = url.path.strip("/").split("/")
        if parts[0] != "secrets" or len(parts) not in (2, 3):
            return self.send_error_body(404, "NotFound", "The requested resource does not exist.")
        name = parts[1]
        retry_after = self.wire.retry_after(name)
        if retry_after is not None:
            message = "Request was not processed because too many requests were received."
            return self.send_error_body(429, "Throttled", message, {"Retry-After": str(retry_after)})
        versions = self.wire.versions(name)
        if len(parts) == 3 and parts[2] == "versions":
            if not versions:
                return self._not_found(name)
            items = [{"id": self._id(name, v), "attributes": _attributes(v)} for v in versions]
            return self.send_json(200, {"value": items, "nextLink": None})
        wanted = parts[2] if len(parts) == 3 and parts[2] else None
        found = [v for v in versions if wanted in (None, v.id)]
        if not found:
            return self._not_found(name if wanted is None else f"{name}/{wanted}")
        version = found[-1]
        self.send_json(200, {"value": version.value, "id": self._id(name, version),
                             "attributes": _attributes(version), "tags": {}})

    def _id(self, name: str, version: _Version) -> str:
        return f"{self.wire.vault_url}/secrets/{name}/{version.id}"

    def _not_found(self, what: str) -> None:
        self.send_error_body(
            404, "SecretNotFound", f"A secret with (name/id) {what} was not found in this key vault."
        )


class _LoginHandler(_Handler):
    def do_GET(self) -> None:
        base = f"{self.wire.authority_host}/{self.wire.tenant_id}"
        if urlsplit(self.path).path != f"/{self.wire.tenant_id}/v2.0/.well-known/openid-configuration":
            return self.send_json(404, {"error": "not_found"})
        self.send_json(200, {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        })

    def do_POST(self) -> None:
        if urlsplit(self.path).path != f"/{self.wire.tenant_id}/oauth2/v2.0/token":
            return self.send_json(404, {"error": "not_found"})
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        client_id = form.get("client_id", "")
        if form.get("grant_type") != "client_credentials":
            return self.send_json(400, {"error": "unsupported_grant_type"})
        expected = self.wire.app_secret(client_id)
        if expected is None or expected != form.get("client_secret"):
            return self.send_json(401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            })
        scope = form.get("scope", "").split()
        resource = next((s.removesuffix("/.default") for s in scope if s.endswith("/.default")), "")
        self.send_json(200, self.wire.issue_token(client_id, resource))


class _IdentityHandler(_Handler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != "/msi/token" or query.get("api-version") != "2019-08-01":
            return self.send_json(400, {"error": "invalid_request"})
        if self.headers.get("X-IDENTITY-HEADER") != self.wire.identity_header:
            return self.send_json(401, {"error": "unauthorized"})
        resource = query.get("resource", "")
        token = self.wire.issue_token(self.wire.managed_identity_id, resource)
        self.send_json(200, {
            "access_token": token["access_token"],
            "expires_on": str(int(time.time()) + 3599),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self.wire.managed_identity_id,
        })


def _attributes(version: _Version) -> dict[str, Any]:
    exp = {"exp": version.expires} if version.expires is not None else {}
    return {"enabled": True, "created": version.created, "updated": version.created,
            "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90, **exp}


def _serve(handler: type[_Handler], wire: KeyVaultWire, tls: tuple[Path, Path] | None) -> ThreadingHTTPServer:
    bound = type(handler.__name__, (handler,), {"wire": wire})
    server = ThreadingHTTPServer(("127.0.0.1", 0), bound)
    server.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _write_self_signed_cert(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (clients trust its file) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credflow test key vault")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "akv-wire-cert.pem", workdir / "akv-wire-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
