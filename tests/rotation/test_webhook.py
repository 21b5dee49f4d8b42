"""The Event Grid webhook: both schemas, both handshakes, event keys, duplicates and out-of-order events."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import ADMIN_TOKEN, Api
from tests.rotation.conftest import CountingVault, audit, connect, connection, register_machine, vault_store, wait_for

from credflow.api.app import create_app
from credflow.services.core import Core
from credflow.services.secrets import outbox
from credflow.settings import Settings

HOOK = "/events/eventgrid"
CE = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"


@pytest.fixture
def kv(admin: Api, vault: CountingVault) -> dict[str, Any]:
    """A vault-backed credential with one connection, and an event key."""
    vault.write("newsecret", "first")
    vault_store(admin, vault)
    admin.text_var("kv_user", "robot")
    admin.secret_var("kv_pass", "kv", "newsecret")
    cred = admin.credential("KV login", "kv_user", "kv_pass")
    conn = connect(admin, register_machine(admin), cred["id"], "c")["id"]
    key = admin.ok(admin.post(admin.e("/event-keys")), 201)
    name = vault.url.split("//")[1].split(".")[0]
    topic = f"/subscriptions/0000-1111/resourceGroups/sample-rg/providers/Microsoft.KeyVault/vaults/{name}"
    return {"conn": conn, "key": key["key"], "key_id": key["id"], "topic": topic}


def eventgrid_event(topic: str, version: str, event_id: str = "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
                    vault_url: str = "https://sample-kv.vault.azure.net") -> dict[str, Any]:
    """Microsoft's sample, quirks kept: "ObjectName " with a space, the version with a leading space."""
    return {"id": event_id, "topic": topic, "subject": "newsecret",
            "eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "eventTime": "2019-07-25T01:08:33.1036736Z",
            "data": {"Id": f"{vault_url}/secrets/newsecret/{version}", "VaultName": "sample-kv",
                     "ObjectType": "Secret", "ObjectName ": "newsecret", "Version": f" {version}",
                     "NBF": "1559081980", "EXP": 1559082102},
            "dataVersion": "1", "metadataVersion": "1"}


def cloud_event(topic: str, version: str, event_id: str = "ce-1") -> dict[str, Any]:
    return {"id": event_id, "source": topic, "subject": "newsecret", "specversion": "1.0",
            "type": "microsoft.keyvault.secretnewversioncreated", "time": "2019-07-25T01:08:33.1036736Z",
            "data": {" objectName": "newsecret", "version": version, "nbf": 1559081980, "exp": "1559082102"}}


def post(api: Api, body: Any, key: str | None, content_type: str = "application/json",
         headers: dict[str, str] | None = None) -> Any:
    return api.http.post(HOOK, params={"key": key} if key else None, content=json.dumps(body),
                         headers={"content-type": content_type, **(headers or {})})


def test_an_event_grid_event_in_microsofts_sample_form_refreshes_the_connection(
        admin: Api, vault: CountingVault, kv: dict[str, Any]) -> None:
    new = vault.write("newsecret", "second")
    resp = post(admin, [eventgrid_event(kv["topic"], new)], kv["key"])
    assert resp.status_code == 200 and resp.json()["accepted"] == 1
    wait_for(lambda: connection(admin, kv["conn"])["secret_version"] == new, timeout=1)
    assert [r["detail"]["source"] for r in audit(admin, "secret.version_changed")] == ["eventgrid"]


def test_cloudevents_structured_and_batch_are_accepted(admin: Api, vault: CountingVault, kv: dict[str, Any]) -> None:
    second = vault.write("newsecret", "second")
    assert post(admin, cloud_event(kv["topic"], second), kv["key"], CE).json()["accepted"] == 1
    wait_for(lambda: connection(admin, kv["conn"])["secret_version"] == second)
    third = vault.write("newsecret", "third")
    batch = [cloud_event(kv["topic"], second, "ce-1"), cloud_event(kv["topic"], third, "ce-2")]
    assert post(admin, batch, kv["key"], CE_BATCH).json() == {"accepted": 1, "duplicates": 1, "ignored": 0}
    wait_for(lambda: connection(admin, kv["conn"])["secret_version"] == third)


def test_the_event_grid_subscription_handshake_answers_200_with_the_code(admin: Api, kv: dict[str, Any]) -> None:
    validation = [{"id": "2d1781af", "topic": "/subscriptions/xxxxxxxx", "subject": "",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x"},
                   "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "eventTime": "2018-01-25T22:12:19.4556811Z", "metadataVersion": "1", "dataVersion": "1"}]
    resp = post(admin, validation, kv["key"], headers={"aeg-event-type": "SubscriptionValidation"})
    assert resp.status_code == 200 and resp.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert post(admin, validation, "wrong-key").status_code == 401


def test_the_cloudevents_options_handshake_grants_the_origin(admin: Api, kv: dict[str, Any]) -> None:
    resp = admin.http.options(HOOK, params={"key": kv["key"]},
                              headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert resp.status_code == 200
    assert resp.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert resp.headers["WebHook-Allowed-Rate"] == "*" and "POST" in resp.headers["Allow"]
    rated = admin.http.options(HOOK, headers={"WebHook-Request-Origin": "eventgrid.azure.net",
                                              "WebHook-Request-Rate": "120", "aeg-sas-key": kv["key"]})
    assert rated.headers["WebHook-Allowed-Rate"] == "120"
    assert admin.http.options(HOOK, params={"key": kv["key"]}).status_code == 400
    assert admin.http.options(HOOK, headers={"WebHook-Request-Origin": "x"}).status_code == 401


def test_several_keys_are_valid_at_once_and_a_deleted_key_is_refused(
        admin: Api, vault: CountingVault, kv: dict[str, Any]) -> None:
    second = admin.ok(admin.post(admin.e("/event-keys")), 201)
    listed = admin.ok(admin.get(admin.e("/event-keys")))["items"]
    assert {k["id"] for k in listed} == {kv["key_id"], second["id"]} and all("key" not in k for k in listed)
    v2 = vault.write("newsecret", "second")
    assert post(admin, [eventgrid_event(kv["topic"], v2, "e-1")], kv["key"]).status_code == 200
    v3 = vault.write("newsecret", "third")
    resp = admin.http.post(HOOK, content=json.dumps([eventgrid_event(kv["topic"], v3, "e-2")]),
                           headers={"aeg-sas-key": second["key"], "content-type": "application/json"})
    assert resp.status_code == 200 and resp.json()["accepted"] == 1
    assert admin.delete(admin.e(f"/event-keys/{kv['key_id']}")).status_code == 204
    refused = post(admin, [eventgrid_event(kv["topic"], v3, "e-3")], kv["key"])
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_event_key"
    assert post(admin, [eventgrid_event(kv["topic"], v3)], None).json()["code"] == "missing_event_key"
    wait_for(lambda: connection(admin, kv["conn"])["secret_version"] == v3)


def test_only_system_administrators_manage_event_keys(admin: Api, kv: dict[str, Any]) -> None:
    maker = admin.user("maker", "environment_maker")
    assert maker.post(maker.e("/event-keys")).status_code == 403
    assert maker.get(maker.e("/event-keys")).status_code == 403
    assert maker.delete(maker.e(f"/event-keys/{kv['key_id']}")).status_code == 403
    assert admin.delete(admin.e("/event-keys/nope")).status_code == 404


def test_a_key_reaches_only_its_own_environment(admin: Api, vault: CountingVault, kv: dict[str, Any]) -> None:
    other = admin.ok(admin.post("/environments", {"name": "other"}), 201)
    other_key = admin.ok(admin.post(f"/api/v1/environments/{other['id']}/event-keys"), 201)["key"]
    new = vault.write("newsecret", "second")
    assert post(admin, [eventgrid_event(kv["topic"], new)], other_key).json() == {
        "accepted": 0, "duplicates": 0, "ignored": 1}
    time.sleep(0.3)
    assert connection(admin, kv["conn"])["secret_version"] != new


def test_a_body_that_is_not_events_is_400(admin: Api, kv: dict[str, Any]) -> None:
    for body in (b"{not json", b"[1, 2]", b"[]", b'[{"id": "x"}]', b'"text"'):
        resp = admin.http.post(HOOK, params={"key": kv["key"]}, content=body,
                               headers={"content-type": "application/json"})
        assert resp.status_code == 400, body
    assert admin.http.post(HOOK, content=b"{not json").status_code == 401  # the key is checked first


def test_events_of_other_types_or_vaults_are_acknowledged_and_ignored(admin: Api, kv: dict[str, Any]) -> None:
    expiring = {**eventgrid_event(kv["topic"], "v9"), "eventType": "Microsoft.KeyVault.SecretNearExpiry"}
    elsewhere = eventgrid_event("/subscriptions/1/resourceGroups/r/providers/Microsoft.KeyVault/vaults/nope", "v9")
    assert post(admin, [expiring, elsewhere], kv["key"]).json() == {"accepted": 0, "duplicates": 0, "ignored": 2}


def test_a_repeated_event_is_stored_once_and_read_once(admin: Api, vault: CountingVault, kv: dict[str, Any]) -> None:
    new = vault.write("newsecret", "second")
    first = post(admin, [eventgrid_event(kv["topic"], new, "same-id")], kv["key"]).json()
    again = post(admin, [eventgrid_event(kv["topic"], new, "same-id")], kv["key"]).json()
    other_id = post(admin, [eventgrid_event(kv["topic"], new, "retry-id")], kv["key"]).json()
    assert (first["accepted"], again["duplicates"], other_id["duplicates"]) == (1, 1, 1)
    wait_for(lambda: connection(admin, kv["conn"])["secret_version"] == new)
    time.sleep(0.2)
    assert [r for r in vault.reads if r[1] == new] and len([r for r in vault.reads if r[1] == new]) == 1
    assert len(audit(admin, "secret.version_changed")) == 1


def test_an_older_event_arriving_late_changes_nothing(admin: Api, vault: CountingVault, kv: dict[str, Any]) -> None:
    second = vault.write("newsecret", "second")
    third = vault.write("newsecret", "third")
    post(admin, [eventgrid_event(kv["topic"], third, "e-3")], kv["key"])
    wait_for(lambda: connection(admin, kv["conn"])["secret_version"] == third)
    post(admin, [eventgrid_event(kv["topic"], second, "e-2")], kv["key"])
    wait_for(lambda: admin.ok(admin.get(admin.e("/rotation")))["pending_events"] == 0)
    assert connection(admin, kv["conn"])["secret_version"] == third
    assert not [r for r in vault.reads if r[1] == second]
    assert len(audit(admin, "secret.version_changed")) == 1


def test_an_event_for_a_builtin_version_already_written_changes_nothing(admin: Api, cred_setup: dict[str, Any]) -> None:
    conn = connect(admin, register_machine(admin), cred_setup["credential"]["id"], "c")["id"]
    admin.secret("vault", "robot-password", "two")
    admin.secret("vault", "robot-password", "three")
    wait_for(lambda: connection(admin, conn)["secret_version"] == "3")
    changes = len(audit(admin, "secret.version_changed"))
    key = admin.ok(admin.post(admin.e("/event-keys")), 201)["key"]
    late = {**eventgrid_event("builtin://default/vault", "2"), "subject": "robot-password"}
    # A delivery never shares a key with credflow's own events, so it is stored; the worker skips it unread.
    assert post(admin, [late], key).json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    assert post(admin, [late], key).json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    wait_for(lambda: admin.ok(admin.get(admin.e("/rotation")))["pending_events"] == 0)
    assert connection(admin, conn)["secret_version"] == "3"
    assert len(audit(admin, "secret.version_changed")) == changes


def test_a_fault_on_our_side_is_a_5xx_so_event_grid_retries(
        settings: Settings, core: Core, vault: CountingVault, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(settings, core), raise_server_exceptions=False) as http:
        admin = Api(http, ADMIN_TOKEN)
        admin.env = admin.ok(admin.get("/environments"))["items"][0]["id"]
        vault.write("newsecret", "first")
        vault_store(admin, vault)
        key = admin.ok(admin.post(admin.e("/event-keys")), 201)["key"]
        name = vault.url.split("//")[1].split(".")[0]
        topic = f"/subscriptions/1/resourceGroups/r/providers/Microsoft.KeyVault/vaults/{name}"

        def broken(*_: Any, **__: Any) -> bool:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(outbox, "secret_version_changed", broken)
        resp = post(admin, [eventgrid_event(topic, "v2")], key)
        assert resp.status_code >= 500 and resp.json()["code"] == "internal_error"
