"""Expiry recorded from the real vaults: OpenBao's custom_metadata.expires_at and delete_version_after, Secrets
Manager's NextRotationDate (moto), Key Vault's attributes.exp (the wire stand-in), and Key Vault's
SecretNearExpiry / SecretExpired events (Event Grid and CloudEvents), recorded at once."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from credflow.services.core import Core
from tests.conftest import Api
from tests.health.conftest import LoopbackKeyVaultPlugin, findings, iso, wait_for
from tests.stores.conftest import AWS_REGION, Azure, Moto, OpenBao

HOOK = "/events/eventgrid"


def _credential(admin: Api, store: str, secret: str, name: str = "Robot login") -> dict[str, Any]:
    admin.text_var(f"user_{name[:5].lower()}", "robot")
    admin.secret_var(f"pass_{name[:5].lower()}", store, secret)
    return admin.credential(name, f"user_{name[:5].lower()}", f"pass_{name[:5].lower()}")


def _expiry_findings(admin: Api) -> list[tuple[str, str | None, str]]:
    return [(f["kind"], f.get("expires_at"), f["credential"]) for f in findings(admin)
            if f["kind"] in ("expires_soon", "expired")]


def test_openbao_custom_metadata_expires_at_is_recorded(admin: Api, openbao: OpenBao) -> None:
    path = f"robot-{uuid.uuid4().hex[:8]}"
    root = openbao.root()
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": "bao-password"})
    when = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)
    root.secrets.kv.v2.update_metadata(path=path, custom_metadata={"expires_at": iso(when)})
    admin.store("bao", "hashicorp-vault", vault_url=openbao.address,
                config={"address": openbao.address, "token": openbao.root_token, "poll_interval_seconds": 0})
    cred = _credential(admin, "bao", path)
    assert _expiry_findings(admin) == [("expires_soon", iso(when), cred["id"])]


def test_openbao_delete_version_after_is_recorded(admin: Api, openbao: OpenBao) -> None:
    path = f"robot-{uuid.uuid4().hex[:8]}"
    root = openbao.root()
    root.secrets.kv.v2.update_metadata(path=path, delete_version_after="72h")
    made = root.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": "bao-password"})
    created = datetime.fromisoformat(made["data"]["created_time"][:26].rstrip("Z") + "+00:00")
    admin.store("bao", "hashicorp-vault", vault_url=openbao.address,
                config={"address": openbao.address, "token": openbao.root_token, "poll_interval_seconds": 0})
    cred = _credential(admin, "bao", path)
    [(kind, expires, owner)] = _expiry_findings(admin)
    assert (kind, owner) == ("expires_soon", cred["id"])
    assert expires is not None
    assert abs(datetime.fromisoformat(expires.replace("Z", "+00:00")) - (created + timedelta(hours=72))) < \
        timedelta(seconds=1)


def test_secrets_manager_next_rotation_date_is_recorded(admin: Api, moto: Moto) -> None:
    key_id, secret_key = moto.admin_keys
    session = boto3.session.Session()
    kw = {"region_name": AWS_REGION, "endpoint_url": moto.endpoint, "aws_access_key_id": key_id,
          "aws_secret_access_key": secret_key}
    iam, lam = session.client("iam", **kw), session.client("lambda", **kw)
    name = f"robot-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("rotate.py", "def handler(event, context):\n    pass\n")
    fn = lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="rotate.handler",
                             Code={"ZipFile": code.getvalue()})["FunctionArn"]
    client: Any = moto.admin()
    client.create_secret(Name=name, SecretString="aws-password")
    client.rotate_secret(SecretId=name, RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 5},
                         RotateImmediately=False)
    next_rotation = client.describe_secret(SecretId=name)["NextRotationDate"]
    admin.store("aws", "aws-secretsmanager", vault_url=moto.endpoint, config={
        "region": AWS_REGION, "endpoint_url": moto.endpoint, "access_key_id": key_id,
        "secret_access_key": secret_key, "poll_interval_seconds": 0})
    cred = _credential(admin, "aws", name)
    assert _expiry_findings(admin) == [("expires_soon", iso(next_rotation), cred["id"])]


# --- Key Vault: attributes.exp on read, SecretNearExpiry / SecretExpired events ----------------------------
def _akv(admin: Api, core: Core, azure: Azure, name: str, expires: int | None = None) -> dict[str, Any]:
    core.registry.plugins["azure-keyvault"] = LoopbackKeyVaultPlugin
    wire, app = azure.wire, azure.reader
    version = wire.set_secret(name, "akv-password", expires=expires)
    # Named as the vault of Microsoft's sample topic, so that the events' ARM resource id names this store.
    admin.store("sample-kv", "azure-keyvault", vault_url=wire.vault_url, config={
        "tenant_id": wire.tenant_id, "client_id": app.client_id, "client_secret": app.client_secret,
        "authority_host": wire.authority_host, "ca_bundle": str(wire.ca_bundle), "poll_interval_seconds": 0})
    cred = _credential(admin, "sample-kv", name)
    key = admin.ok(admin.post(admin.e("/event-keys")), 201)["key"]
    return {"version": version, "credential": cred["id"], "key": key}


def _near_expiry(name: str, version: str, exp: int) -> dict[str, Any]:
    """Microsoft's documented Event Grid sample, of type SecretNearExpiry, quirks kept ("ObjectName " with a space,
    the version with a leading space, NBF/EXP as strings)."""
    return {"id": "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
            "topic": "/subscriptions/{subscription-id}/resourceGroups/sample-rg/providers/Microsoft.KeyVault/vaults/"
                     "sample-kv",
            "subject": name, "eventType": "Microsoft.KeyVault.SecretNearExpiry",
            "eventTime": "2019-07-25T01:08:33.1036736Z",
            "data": {"Id": f"https://sample-kv.vault.azure.net/secrets/{name}/{version}", "VaultName": "sample-kv",
                     "ObjectType": "Secret", "ObjectName ": name, "Version": f" {version}",
                     "NBF": "1559081980", "EXP": str(exp)},
            "dataVersion": "1", "metadataVersion": "1"}


def test_key_vault_exp_is_recorded_on_read(admin: Api, core: Core, azure: Azure) -> None:
    exp = int(time.time()) + 2 * 86400
    made = _akv(admin, core, azure, f"exp-{uuid.uuid4().hex[:8]}", expires=exp)
    assert _expiry_findings(admin) == [("expires_soon", iso(datetime.fromtimestamp(exp, UTC)), made["credential"])]


def test_secret_near_expiry_from_event_grid_raises_the_finding(admin: Api, core: Core, azure: Azure) -> None:
    name = f"near-{uuid.uuid4().hex[:8]}"
    made = _akv(admin, core, azure, name)
    assert _expiry_findings(admin) == []
    exp = int(time.time()) + 10 * 86400
    resp = admin.http.post(HOOK, params={"key": made["key"]},
                           content=json.dumps([_near_expiry(name, made["version"], exp)]),
                           headers={"content-type": "application/json"})
    assert admin.ok(resp)["accepted"] == 1
    want = [("expires_soon", iso(datetime.fromtimestamp(exp, UTC)), made["credential"])]
    wait_for(lambda: _expiry_findings(admin) == want, timeout=5)


def test_secret_expired_as_a_cloud_event_raises_expired(admin: Api, core: Core, azure: Azure) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    made = _akv(admin, core, azure, name)
    exp = int(time.time()) - 60
    event = {"id": str(uuid.uuid4()), "specversion": "1.0", "type": "Microsoft.KeyVault.SecretExpired",
             "source": "/subscriptions/{subscription-id}/resourceGroups/sample-rg/providers/Microsoft.KeyVault/vaults/"
                       "sample-kv", "subject": name, "time": "2019-07-25T01:08:33.1036736Z",
             "data": {"Id": f"https://sample-kv.vault.azure.net/secrets/{name}/{made['version']}",
                      "VaultName": "sample-kv", "ObjectType": "Secret", "ObjectName": name,
                      "Version": made["version"], "NBF": 1559081980, "EXP": exp}}
    resp = admin.http.post(HOOK, params={"key": made["key"]}, content=json.dumps(event),
                           headers={"content-type": "application/cloudevents+json"})
    assert admin.ok(resp)["accepted"] == 1
    want = [("expired", iso(datetime.fromtimestamp(exp, UTC)), made["credential"])]
    wait_for(lambda: _expiry_findings(admin) == want, timeout=5)
