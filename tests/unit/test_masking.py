"""Masking a run's output: a credential's value never reaches a stored log, however the output breaks it."""

from __future__ import annotations

import pytest

from credflow.domain.masking import MASK, mask

PASSWORD = "Pa55w0rd"


def test_a_value_inside_longer_text_becomes_three_stars() -> None:
    assert mask(f"login user=svc password={PASSWORD}; ok", [PASSWORD]) == "login user=svc password=***; ok"


def test_every_occurrence_is_masked() -> None:
    assert mask(f"{PASSWORD} and {PASSWORD}", [PASSWORD]) == f"{MASK} and {MASK}"


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\r"])
def test_a_value_broken_across_lines_is_masked_and_the_breaks_stay(brk: str) -> None:
    assert mask(f"pw: Pa55{brk}w0rd done", [PASSWORD]) == f"pw: ***{brk}*** done"


def test_overlapping_values_are_masked_as_one_stretch() -> None:
    assert mask("xx-abcabc-yy", ["abca", "cabc"]) == "xx-***-yy"


def test_text_without_the_values_is_left_as_it_is() -> None:
    text = "line one\r\nline two\n"
    assert mask(text, [PASSWORD]) == text


def test_blank_values_hide_nothing() -> None:
    assert mask("nothing to hide", [None, ""]) == "nothing to hide"


def test_a_value_that_itself_holds_a_line_break_is_found() -> None:
    assert mask("a-secret\nvalue-b", ["secret\nvalue"]) == "a-***\n***-b"
