"""Lenient reading of deliveries: Microsoft's verbatim samples, the 2020 camelCase revision, binary mode."""

from __future__ import annotations

import json

import pytest

from credflow.domain.errors import Malformed
from credflow.events.parsing import parse

TOPIC = "/subscriptions/{subscription-id}/resourceGroups/sample-rg/providers/Microsoft.KeyVault/vaults/sample-kv"
SAMPLE_DATA = {"Id": "https://sample-kv.vault.azure.net/secrets/newsecret/ee059b2bb5bc48398a53b168c6cdcb10",
               "VaultName": "sample-kv", "ObjectType": "Secret", "ObjectName ": "newsecret",
               "Version": " ee059b2bb5bc48398a53b168c6cdcb10", "NBF": "1559081980", "EXP": "1559082102"}


def test_microsofts_event_grid_sample_reads_with_its_quirks() -> None:
    body = [{"id": "00eccf70-95a7-4e7c-8299-2eb17ee9ad64", "topic": TOPIC, "subject": "newsecret",
             "eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "eventTime": "2019-07-25T01:08:33.1036736Z",
             "data": SAMPLE_DATA, "dataVersion": "1", "metadataVersion": "1"}]
    (ev,) = parse(json.dumps(body).encode(), "application/json", {}).events
    assert ev.is_new_secret_version and ev.schema == "eventgrid"
    assert (ev.name, ev.version) == ("newsecret", "ee059b2bb5bc48398a53b168c6cdcb10")
    assert ev.vaults == (TOPIC, "https://sample-kv.vault.azure.net")
    assert (ev.not_before, ev.expires) == (1559081980.0, 1559082102.0)


def test_microsofts_cloudevents_sample_and_camel_case_numbers() -> None:
    body = [{"id": "1", "source": TOPIC, "subject": " newsecret ", "type": "Microsoft.KeyVault.SecretNewVersionCreated",
             "time": "2019-07-25T01:08:33.1036736Z", "specversion": "1.0",
             "data": {"vaultName": "sample-kv", "objectType": "Secret", "objectName": "newsecret",
                      "version": "v2", "nbf": 1559081980, "exp": None}}]
    (ev,) = parse(json.dumps(body).encode(), "application/cloudevents-batch+json", {}).events
    assert (ev.schema, ev.name, ev.version, ev.not_before, ev.expires) == ("cloudevents", "newsecret", "v2",
                                                                           1559081980.0, None)


def test_a_binary_mode_cloudevent_and_data_given_as_a_string() -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "Microsoft.KeyVault.SecretNewVersionCreated", "ce-id": "7",
               "ce-source": TOPIC, "ce-subject": "newsecret"}
    (ev,) = parse(json.dumps({"Version": "v3"}).encode(), "application/json", headers).events
    assert (ev.id, ev.name, ev.version) == ("7", "newsecret", "v3")
    stringly = {"specversion": "1.0", "type": "Microsoft.KeyVault.SecretNewVersionCreated", "source": TOPIC,
                "id": "8", "data": json.dumps({"ObjectName": "newsecret", "Version": "v4"})}
    (ev,) = parse(json.dumps(stringly).encode(), "application/cloudevents+json", {}).events
    assert (ev.name, ev.version) == ("newsecret", "v4")


def test_other_object_types_are_not_secret_versions() -> None:
    body = [{"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "topic": TOPIC, "subject": "k",
             "data": {"ObjectType": "Key"}}]
    assert not parse(json.dumps(body).encode(), "application/json", {}).events[0].is_new_secret_version


@pytest.mark.parametrize("body", [b"", b"null", b"{}", b"[{}]", b'[{"eventType": ["x"]}]', b"\xff\xfe",
                                  b'[{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent"}]'])
def test_what_is_not_events_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse(body, "application/json", {})
