"""Heads move forward only: which version of a secret counts as newer than the one credflow serves."""

from __future__ import annotations

import pytest

from credflow.services.secrets.connection_state import newer


@pytest.mark.parametrize("kind", ["builtin", "azure-keyvault", "hashicorp-vault", "aws-secretsmanager"])
def test_any_version_is_newer_than_none(kind: str) -> None:
    assert newer(kind, "1", None)


def test_builtin_versions_compare_as_integers() -> None:
    assert newer("builtin", "10", "9")
    assert not newer("builtin", "9", "10")
    assert not newer("builtin", "3", "3")


def test_a_builtin_version_that_is_not_an_integer_is_newer_when_it_differs() -> None:
    assert newer("builtin", "v2", "1") and not newer("builtin", "v2", "v2")


@pytest.mark.parametrize("kind", ["azure-keyvault", "hashicorp-vault", "aws-secretsmanager"])
def test_for_a_vault_any_other_version_is_newer_because_the_vault_is_the_truth(kind: str) -> None:
    assert newer(kind, "1", "9") and newer(kind, "b7c1", "a0f3")
    assert not newer(kind, "a0f3", "a0f3")
