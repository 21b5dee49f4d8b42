"""``NAME#FIELD`` names one field of a key/value secret; a plain name reads the whole secret or its ``value``."""

from __future__ import annotations

import pytest

from credflow.stores.base import SecretNotFound, pick_field, pick_from_mapping, split_field


@pytest.mark.parametrize(("name", "parts"), [
    ("db", ("db", None)),
    ("db#password", ("db", "password")),
    ("db#", ("db", "")),
    ("db#a#b", ("db", "a#b")),
    ("path/to/db#user", ("path/to/db", "user")),
])
def test_a_name_splits_at_its_first_hash(name: str, parts: tuple[str, str | None]) -> None:
    assert split_field(name) == parts


def test_a_plain_name_reads_the_whole_secret_where_the_store_says_so() -> None:
    assert pick_field('{"value": "x"}', None, whole_when_plain=True) == '{"value": "x"}'


def test_a_plain_name_reads_value_from_a_key_value_secret_otherwise() -> None:
    assert pick_field('{"value": "x", "user": "u"}', None, whole_when_plain=False) == "x"
    assert pick_field("not json", None, whole_when_plain=False) == "not json"


def test_a_field_is_picked_out_of_a_json_object() -> None:
    raw = '{"username": "svc", "password": "Pa55"}'
    assert pick_field(raw, "password", whole_when_plain=True) == "Pa55"
    assert pick_field(raw, "username", whole_when_plain=False) == "svc"


def test_a_field_that_is_not_a_string_is_given_as_json() -> None:
    assert pick_from_mapping({"port": 5432, "tags": ["a"]}, "port") == "5432"
    assert pick_from_mapping({"port": 5432, "tags": ["a"]}, "tags") == '["a"]'


def test_a_missing_field_is_not_found_and_its_error_shows_no_value() -> None:
    with pytest.raises(SecretNotFound) as caught:
        pick_field('{"password": "Pa55-secret"}', "pwd", whole_when_plain=True)
    assert "'pwd'" in str(caught.value) and "Pa55-secret" not in str(caught.value)


def test_a_field_of_a_secret_that_is_not_a_json_object_is_not_found() -> None:
    with pytest.raises(SecretNotFound) as caught:
        pick_field("plain-Pa55", "password", whole_when_plain=True)
    assert "plain-Pa55" not in str(caught.value)
    with pytest.raises(SecretNotFound):
        pick_from_mapping(["password"], "password")
