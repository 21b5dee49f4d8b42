"""The one name validator and the three ways callers refuse a name, each with its code and message."""

from __future__ import annotations

from typing import Any

import pytest

from credflow.domain.errors import RuleViolation
from credflow.domain.names import MAX_NAME, check_name


def refusal(name: Any, what: str, **how: bool) -> tuple[str, str]:
    with pytest.raises(RuleViolation) as caught:
        check_name(name, what, **how)
    return caught.value.code, caught.value.detail


def test_a_name_is_kept_without_the_blanks_around_it() -> None:
    assert check_name("  pc-1 \t", "machine") == "pc-1"
    assert check_name(" flow ", "cloud flow", one_code=True) == "flow"
    assert check_name(" ops ", "team", count_blanks=False) == "ops"


@pytest.mark.parametrize("blank", ["", "   ", "\n\t", None, 42, ["x"]])
def test_a_blank_or_missing_name_is_empty_name(blank: Any) -> None:
    assert refusal(blank, "machine group") == ("empty_name", "a machine group needs a non-empty name")
    assert refusal(blank, "team", count_blanks=False) == ("empty_name", "a team needs a non-empty name")
    assert refusal(blank, "connection", one_code=True) == (
        "empty_name", "a connection needs a name of 1 to 200 characters")


def test_a_name_of_200_characters_is_accepted_and_201_is_too_long() -> None:
    assert MAX_NAME == 200
    assert check_name("x" * 200, "credential") == "x" * 200
    assert refusal("x" * 201, "credential") == ("name_too_long", "a credential name has at most 200 characters")


def test_with_one_code_a_long_name_is_empty_name_too() -> None:
    assert refusal("x" * 201, "desktop flow", one_code=True) == (
        "empty_name", "a desktop flow needs a name of 1 to 200 characters")


def test_the_blanks_around_a_name_count_towards_its_length_unless_told_otherwise() -> None:
    padded = "  " + "x" * 199
    assert refusal(padded, "machine") == ("name_too_long", "a machine name has at most 200 characters")
    assert refusal(padded, "connection reference", one_code=True)[0] == "empty_name"
    assert check_name(padded, "team", count_blanks=False) == "x" * 199
    assert refusal(" " + "x" * 201, "team", count_blanks=False) == (
        "name_too_long", "a team name has at most 200 characters")
