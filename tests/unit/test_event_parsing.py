"""Reading an Event Grid or CloudEvents delivery: arrays, structured and batch CloudEvents, the subscription
validation handshake, and what is refused as malformed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from credflow.domain.errors import Malformed
from credflow.events.parsing import MAX_EVENTS, parse

NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
TOPIC = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
SECRET_ID = "https://kv1.vault.azure.net/secrets/db-password/v2"


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def event_grid(**over: Any) -> dict[str, Any]:
    return {"id": "e1", "topic": TOPIC, "subject": "db-password", "eventType": NEW_VERSION,
            "data": {"Id": SECRET_ID, "ObjectType": "Secret", "ObjectName": "db-password", "Version": "v2"},
            "dataVersion": "1", "metadataVersion": "1", **over}


def cloud_event(**over: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "c1", "source": TOPIC, "subject": "db-password", "type": NEW_VERSION,
            "data": {"Id": SECRET_ID, "ObjectType": "Secret", "ObjectName": "db-password", "Version": "v3"}, **over}


def refused(raw: bytes, content_type: str = "application/json") -> str:
    with pytest.raises(Malformed) as caught:
        parse(raw, content_type, {})
    return caught.value.code


def test_an_event_grid_array_gives_each_new_secret_version() -> None:
    got = parse(body([event_grid(), event_grid(id="e2", subject="api-key", data={"Version": "7"})]),
                "application/json", {})
    assert got.validation_code is None
    first, second = got.events
    assert (first.schema, first.id, first.name, first.version) == ("eventgrid", "e1", "db-password", "v2")
    assert first.vaults == (TOPIC, "https://kv1.vault.azure.net") and first.is_new_secret_version
    assert (second.name, second.version, second.vaults) == ("api-key", "7", (TOPIC,))


def test_a_structured_cloudevent_is_one_event() -> None:
    (ev,) = parse(body(cloud_event()), "application/cloudevents+json", {}).events
    assert (ev.schema, ev.id, ev.name, ev.version, ev.is_new_secret_version) == (
        "cloudevents", "c1", "db-password", "v3", True)


def test_a_cloudevents_batch_gives_every_event_in_order() -> None:
    got = parse(body([cloud_event(id="a"), cloud_event(id="b")]), "application/cloudevents-batch+json", {})
    assert [e.id for e in got.events] == ["a", "b"] and {e.schema for e in got.events} == {"cloudevents"}


def test_an_event_of_another_object_or_type_is_not_a_new_secret_version() -> None:
    cert = event_grid(data={"ObjectType": "Certificate", "ObjectName": "tls", "Version": "1"})
    expired = event_grid(eventType="Microsoft.KeyVault.SecretExpired")
    assert [e.is_new_secret_version for e in parse(body([cert, expired]), "application/json", {}).events] == [
        False, False]


def test_the_subscription_validation_event_answers_with_its_code() -> None:
    handshake = {"id": "v", "topic": TOPIC, "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                 "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}
    assert parse(body([handshake]), "application/json", {}).validation_code == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"


def test_a_validation_event_without_its_code_is_malformed() -> None:
    handshake = {"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {}}
    assert refused(body([handshake])) == "malformed_event"


@pytest.mark.parametrize(("raw", "code"), [
    (b"{not json", "malformed_json"),
    (b"\xff\xfe", "malformed_json"),
    (b"", "malformed_events"),
    (b"[]", "malformed_events"),
    (b'"a string"', "malformed_events"),
    (b"[1, 2]", "malformed_event"),
    (json.dumps([{"id": "x", "data": {}}]).encode(), "malformed_event"),  # no eventType
    (json.dumps([{"specversion": "1.0", "id": "x"}]).encode(), "malformed_event"),  # no type
])
def test_a_body_that_is_not_events_is_malformed(raw: bytes, code: str) -> None:
    assert refused(raw) == code


def test_a_delivery_holds_at_most_max_events() -> None:
    assert refused(body([event_grid()] * (MAX_EVENTS + 1))) == "too_many_events"
    assert len(parse(body([event_grid()] * MAX_EVENTS), "application/json", {}).events) == MAX_EVENTS


@pytest.mark.parametrize("version", ["", "   ", "x" * 201, "v 2", "2\u0000", "\ud800", True, None, [], {"v": 2}])
def test_a_version_no_vault_could_have_is_read_as_no_version(version: Any) -> None:
    data = {"ObjectType": "Secret", "ObjectName": "db-password", "Version": version}
    (ev,) = parse(body([event_grid(data=data)]), "application/json", {}).events
    assert (ev.name, ev.version, ev.is_new_secret_version) == ("db-password", None, True)


def test_a_version_is_kept_as_sent_when_it_could_be_one() -> None:
    for version in ("7", "ee059b2bb5bc48398a53b168c6cdcb10", "x" * 200, "not-a-number", "-1"):
        (ev,) = parse(body([event_grid(data={"Version": version})]), "application/json", {}).events
        assert ev.version == version


def test_a_name_vault_or_event_id_that_cannot_be_one_is_absent() -> None:
    bad = event_grid(id="e\u0000", subject="db\u0000", topic="https://[::1/vault",
                     data={"Id": "https://[x/secrets/db/1", "ObjectName": "n" * 501, "Version": "1"})
    (ev,) = parse(body([bad]), "application/json", {}).events
    assert (ev.id, ev.name, ev.vaults, ev.version) == (None, None, (), "1")
