"""A store never lends the server's own identity unless the operator allows it, and never reaches a link-local
address (cloud metadata), whatever the settings.

The attacker is a system administrator of an environment of her own: she may register stores there, and points
them at a listener she controls on loopback, which records every request's headers. The server's host has
credentials of its own lying around: VAULT_TOKEN, ~/.vault-token, ~/.netrc, AWS keys in its environment, a
managed identity endpoint.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from credflow.cli.main import app as cli
from credflow.persistence.tables import SecretStore
from credflow.services.core import Core
from credflow.stores.egress import AddressRefused, literal_link_local, refuse_link_local
from tests.conftest import Api, problem, sign_in_cli
from tests.e2e.server import free_port
from tests.web.test_sessions import _admin_password, _csrf, _sign_in

ENV_TOKEN = "hvs.HOST-ENV-TOKEN-never-sent"
FILE_TOKEN = "hvs.HOST-FILE-TOKEN-never-sent"
NETRC_PASSWORD = "HOST-NETRC-PASSWORD-never-sent"
HOST_AWS_KEY_ID = "AKIAHOSTOWNKEYNEVERSENT"
HOST_AWS_SECRET = "host-own-aws-secret-never-used"
ATTACKER_TOKEN = "hvs.issued-by-the-attackers-listener"


@dataclass
class Listener:
    """An HTTP server the attacker controls: it answers like a Vault and records what it was sent."""

    url: str
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def headers_sent(self) -> list[dict[str, str]]:
        return [headers for _, _, headers in self.requests]


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            listener.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path.startswith("/v1/sys/health"):
                status, body = 200, {"initialized": True, "sealed": False, "standby": False}
            elif self.path.startswith("/v1/auth/approle/login"):
                status, body = 200, {"auth": {"client_token": ATTACKER_TOKEN, "policies": ["default"]}}
            elif self.path.startswith("/v1/auth/token/lookup-self"):
                status, body = 403, {"errors": ["permission denied"]}
            else:
                status, body = 404, {"errors": []}
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    found.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def host_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's host, with credentials of its own in its environment and home directory."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".vault-token").write_text(FILE_TOKEN + "\n")
    netrc = home / ".netrc"
    netrc.write_text(f"default login host-user password {NETRC_PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("VAULT_TOKEN", ENV_TOKEN)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", HOST_AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", HOST_AWS_SECRET)


@pytest.fixture
def mallory(admin: Api) -> Api:
    """A system administrator of an environment of her own."""
    env = admin.ok(admin.post("/environments", {"name": "mallory-env"}), 201)
    return admin.user("mallory", "system_administrator", env=env["id"])


def stores(api: Api) -> list[dict[str, Any]]:
    return api.ok(api.get(api.e("/secret-stores")))["items"]  # type: ignore[no-any-return]


def checks(api: Api, store: str) -> dict[str, dict[str, Any]]:
    report = api.ok(api.post(api.e(f"/secret-stores/{store}/check")))
    return {c["check"]: c for c in report["checks"]}


def allow_ambient(core: Core, monkeypatch: pytest.MonkeyPatch, allowed: bool = True) -> None:
    monkeypatch.setattr(core.settings, "allow_ambient_credentials", allowed)
    core.open_stores.clear()  # what a restart with the new setting does


# --- (a) a Vault store without a token sends none of the host's -----------------------------------------
@pytest.mark.usefixtures("host_credentials")
@pytest.mark.parametrize("ambient", [False, True], ids=["ambient-off", "ambient-on"])
def test_a_vault_store_without_a_token_never_sends_the_hosts_token(
        mallory: Api, listener: Listener, core: Core, monkeypatch: pytest.MonkeyPatch, ambient: bool) -> None:
    allow_ambient(core, monkeypatch, ambient)
    mallory.store("hers", kind="hashicorp-vault", vault_url=listener.url,
                  config={"address": listener.url, "approle": {"role_id": "r", "secret_id": "her-own-secret-id"}})
    report = checks(mallory, "hers")
    assert report["reachable"]["ok"], report
    resp = mallory.post(mallory.e("/environment-variables"), {
        "schema_name": "probe", "type": "secret", "secret_reference": {"store": "hers", "name": "anything"}})
    problem(resp, 422, "secret_unreadable")

    paths = [path for _, path, _ in listener.requests]
    assert any(p.startswith("/v1/sys/health") for p in paths) and "/v1/auth/approle/login" in paths
    sent = json.dumps(listener.headers_sent())
    assert ENV_TOKEN not in sent and FILE_TOKEN not in sent
    for method, path, headers in listener.requests:
        token = headers.get("x-vault-token")
        assert token in (None, ATTACKER_TOKEN), (method, path)
        if path.startswith(("/v1/sys/health", "/v1/auth/approle/login")):
            assert token is None, (method, path)
    if not ambient:
        assert NETRC_PASSWORD not in sent
        assert all("authorization" not in h for h in listener.headers_sent())


@pytest.mark.usefixtures("host_credentials")
def test_a_vault_store_with_its_own_token_sends_only_that(mallory: Api, listener: Listener) -> None:
    mallory.store("hers", kind="hashicorp-vault", vault_url=listener.url,
                  config={"address": listener.url, "token": "her-own-token"})
    checks(mallory, "hers")
    assert {h.get("x-vault-token") for h in listener.headers_sent()} <= {None, "her-own-token"}
    assert listener.requests


# --- (b) AWS and Azure without credentials of their own ----------------------------------------------------
def _aws_without_keys(endpoint: str) -> dict[str, Any]:
    return {"kind": "aws-secretsmanager", "vault_url": endpoint,
            "config": {"region": "eu-west-1", "endpoint_url": endpoint}}


def _azure_managed_identity() -> dict[str, Any]:
    return {"kind": "azure-keyvault", "vault_url": f"https://127.0.0.1:{free_port()}",
            "config": {"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "managed_identity": True}}


@pytest.mark.parametrize("body", [_aws_without_keys("http://127.0.0.1:1"), _azure_managed_identity()],
                         ids=["aws-default-chain", "azure-managed-identity"])
def test_a_store_without_credentials_of_its_own_is_refused_unless_the_operator_allows_it(
        mallory: Api, core: Core, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]) -> None:
    refused = problem(mallory.post(mallory.e("/secret-stores"), {"name": "hers", **body}), 422,
                      "ambient_credentials_off")
    assert "CREDFLOW_ALLOW_AMBIENT_CREDENTIALS" in refused["detail"]
    assert stores(mallory) == []

    allow_ambient(core, monkeypatch)
    assert mallory.store("hers", **body)["kind"] == body["kind"]


@pytest.mark.usefixtures("host_credentials")
def test_an_aws_store_saved_while_allowed_never_reaches_the_default_chain_once_disallowed(
        mallory: Api, listener: Listener, core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    allow_ambient(core, monkeypatch)
    mallory.store("hers", **_aws_without_keys(listener.url))
    allow_ambient(core, monkeypatch, False)

    report = checks(mallory, "hers")
    assert not report["service_can_read"]["ok"]
    assert "CREDFLOW_ALLOW_AMBIENT_CREDENTIALS" in report["service_can_read"]["detail"]
    resp = mallory.post(mallory.e("/environment-variables"), {
        "schema_name": "probe", "type": "secret", "secret_reference": {"store": "hers", "name": "anything"}})
    assert problem(resp, 422, "secret_unreadable")["reason"] == "store_access_denied"
    assert listener.requests == []  # nothing signed with the host's keys, nothing sent at all


def test_an_azure_store_saved_while_allowed_never_asks_the_managed_identity_once_disallowed(
        mallory: Api, listener: Listener, core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{listener.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "host-identity-header")
    allow_ambient(core, monkeypatch)
    mallory.store("hers", **_azure_managed_identity())
    allow_ambient(core, monkeypatch, False)

    report = checks(mallory, "hers")
    assert not report["service_can_read"]["ok"]
    assert "CREDFLOW_ALLOW_AMBIENT_CREDENTIALS" in report["service_can_read"]["detail"]
    assert listener.requests == []


# --- (c) link-local addresses, refused always ------------------------------------------------------------
CLIENT = {"client_id": "app", "client_secret": "app-secret", "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}
LINK_LOCAL = [
    ({"kind": "hashicorp-vault", "vault_url": "https://vault.example",
      "config": {"address": "http://169.254.169.254", "token": "t"}}, "address"),
    ({"kind": "hashicorp-vault", "vault_url": "https://vault.example",
      "config": {"address": "http://2852039166:8200", "token": "t"}}, "address"),  # 169.254.169.254 as a number
    ({"kind": "hashicorp-vault", "vault_url": "http://169.254.169.254",
      "config": {"address": "https://vault.example", "token": "t"}}, "vault_url"),
    ({"kind": "aws-secretsmanager", "vault_url": "aws://eu-west-1",
      "config": {"region": "eu-west-1", "endpoint_url": "http://[fd00:ec2::254]", "access_key_id": "AKIAX",
                 "secret_access_key": "k"}}, "endpoint_url"),
    ({"kind": "aws-secretsmanager", "vault_url": "aws://eu-west-1",
      "config": {"region": "eu-west-1", "endpoint_url": "http://[::ffff:169.254.169.254]",
                 "access_key_id": "AKIAX", "secret_access_key": "k"}}, "endpoint_url"),
    ({"kind": "azure-keyvault", "vault_url": "https://169.254.169.254", "config": CLIENT}, "vault_url"),
    ({"kind": "azure-keyvault", "vault_url": "https://[fe80::1]", "config": CLIENT}, "vault_url"),
    ({"kind": "azure-keyvault", "vault_url": "https://kv.vault.azure.net",
      "config": {**CLIENT, "authority_host": "169.254.169.254"}}, "authority_host"),
]


@pytest.mark.parametrize(("body", "where"), LINK_LOCAL, ids=[f"{b['kind']}-{w}-{i}" for i, (b, w)
                                                             in enumerate(LINK_LOCAL)])
def test_a_link_local_address_is_refused_whatever_the_setting_and_changes_nothing(
        mallory: Api, core: Core, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], where: str) -> None:
    for ambient in (False, True):
        allow_ambient(core, monkeypatch, ambient)
        refused = problem(mallory.post(mallory.e("/secret-stores"), {"name": "hers", **body}), 422,
                          "link_local_address")
        assert refused["field"] == where and "169.254.0.0/16" in refused["detail"]
        assert stores(mallory) == []


def _point_saved_store_at(core: Core, store_id: str, address: str) -> None:
    """What a store saved before the rule looks like: its address, in its sealed config, link-local."""
    with core.db.transaction() as s:
        row = s.get(SecretStore, store_id)
        assert row is not None
        aad = f"store-config:{row.id}"
        full = json.loads(core.barrier.open(s, row.secret_config or "{}", aad))
        full["address"] = address
        row.secret_config = core.barrier.seal(s, json.dumps(full), aad)
        row.config = {**row.config, "address": address}
    core.open_stores.clear()


def test_a_saved_store_at_a_link_local_address_is_refused_before_connecting(mallory: Api, core: Core) -> None:
    made = mallory.store("hers", kind="hashicorp-vault", vault_url="https://vault.example",
                         config={"address": "https://vault.example", "token": "t"})
    _point_saved_store_at(core, made["id"], "http://169.254.169.254")
    report = checks(mallory, "hers")
    assert not report["reachable"]["ok"] and "link-local" in report["reachable"]["detail"]
    resp = mallory.post(mallory.e("/environment-variables"), {
        "schema_name": "probe", "type": "secret", "secret_reference": {"store": "hers", "name": "anything"}})
    assert problem(resp, 422, "secret_unreadable")["reason"] == "store_address_refused"


def test_a_name_that_resolves_to_a_link_local_address_is_refused_before_connecting(
        mallory: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "metadata.attacker.example":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("169.254.169.254", port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    address = "http://metadata.attacker.example:8200"
    assert not literal_link_local(address)
    mallory.store("hers", kind="hashicorp-vault", vault_url=address, config={"address": address, "token": "t"})
    assert asked == []  # registering a name does no DNS lookup; connecting does, and refuses
    report = checks(mallory, "hers")
    assert not report["reachable"]["ok"] and "169.254.169.254" in report["reachable"]["detail"]
    assert asked
    with pytest.raises(AddressRefused):
        refuse_link_local(address)


def test_a_redirect_to_a_link_local_address_is_not_followed(mallory: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"http://127.0.0.1:{server.server_port}"
        mallory.store("hers", kind="hashicorp-vault", vault_url=address, config={"address": address, "token": "t"})
        report = checks(mallory, "hers")
    finally:
        server.shutdown()
        server.server_close()
    assert not report["reachable"]["ok"] and "link-local" in report["reachable"]["detail"]


# --- verify_challenge_resource is no setting --------------------------------------------------------------
def test_verify_challenge_resource_is_not_offered_and_not_accepted(mallory: Api) -> None:
    kinds = {k["kind"]: k for k in mallory.ok(mallory.get("/secret-store-kinds"))["items"]}
    assert "verify_challenge_resource" not in json.dumps(kinds["azure-keyvault"]["config_schema"])
    body = {"name": "hers", "kind": "azure-keyvault", "vault_url": "https://kv.vault.azure.net",
            "config": {**CLIENT, "verify_challenge_resource": False}}
    refused = problem(mallory.post(mallory.e("/secret-stores"), body), 422, "invalid_store_config")
    assert [e["field"] for e in refused["errors"]] == ["verify_challenge_resource"]
    assert stores(mallory) == []


def test_a_store_saved_with_verify_challenge_resource_opens_with_it_ignored(mallory: Api, core: Core) -> None:
    made = mallory.store("hers", kind="azure-keyvault", vault_url=f"https://127.0.0.1:{free_port()}", config=CLIENT)
    with core.db.transaction() as s:
        row = s.get(SecretStore, made["id"])
        assert row is not None
        aad = f"store-config:{row.id}"
        full = json.loads(core.barrier.open(s, row.secret_config or "{}", aad))
        row.secret_config = core.barrier.seal(s, json.dumps({**full, "verify_challenge_resource": False}), aad)
    core.open_stores.clear()
    reachable = checks(mallory, "hers")["reachable"]
    assert not reachable["ok"] and "cannot reach" in reachable["detail"]  # opened; nothing listens there


# --- the web form and the CLI say the same -----------------------------------------------------------------
def _cli(client: TestClient, api: Api, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    sign_in_cli(monkeypatch, client, api)
    return CliRunner().invoke(cli, list(args))


def test_the_cli_says_why_a_managed_identity_store_is_refused(
        client: TestClient, mallory: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _azure_managed_identity()
    refused = _cli(client, mallory, monkeypatch, "store", "create", "hers", "--kind", body["kind"], "--vault-url",
                   body["vault_url"], "--config", json.dumps(body["config"]))
    assert refused.exit_code != 0 and "CREDFLOW_ALLOW_AMBIENT_CREDENTIALS" in refused.output, refused.output
    made = _cli(client, mallory, monkeypatch, "store", "create", "hers", "--kind", body["kind"], "--vault-url",
                body["vault_url"], "--config", json.dumps(CLIENT), "--json")
    assert made.exit_code == 0, made.output
    assert [s["name"] for s in stores(mallory)] == ["hers"]


def test_the_web_form_says_why_a_store_is_refused(admin: Api, client: TestClient) -> None:
    _admin_password(admin)
    _sign_in(client)
    form = client.get("/env/default/stores/new?kind=azure-keyvault").text
    assert "verify_challenge_resource" not in form and "cfg.managed_identity" in form
    resp = client.post("/env/default/stores/new", data={
        "csrf_token": _csrf(form), "kind": "hashicorp-vault", "name": "bao", "vault_url": "https://vault.example",
        "cfg.address": "http://169.254.169.254", "cfg.token": "Vault-Token-Never-Echoed"})
    assert resp.status_code == 422 and "link_local_address" in resp.text
    assert "Vault-Token-Never-Echoed" not in resp.text
    resp = client.post("/env/default/stores/new", data={
        "csrf_token": _csrf(form), "kind": "azure-keyvault", "name": "kv", "vault_url": "https://kv.vault.azure.net",
        "cfg.tenant_id": "t", "cfg.managed_identity": "yes"})
    assert resp.status_code == 422 and "CREDFLOW_ALLOW_AMBIENT_CREDENTIALS" in resp.text
    assert stores(admin) == []
