"""The name of a thing in an environment: a string that is not blank, at most 200 characters long (counted with
the blanks around it), kept without those blanks.

Two ways of refusing one, as the API has always answered: ``check_name`` tells a blank name (``empty_name``) from
a long one (``name_too_long``); ``check_name_one_code`` answers both with ``empty_name``.
"""

from __future__ import annotations

from typing import Any

from credflow.domain.errors import RuleViolation

MAX_NAME = 200


def check_name(name: Any, what: str) -> str:
    """Machines, machine groups, credentials."""
    if not isinstance(name, str) or not name.strip():
        raise RuleViolation(f"a {what} needs a non-empty name", code="empty_name")
    if len(name) > MAX_NAME:
        raise RuleViolation(f"a {what} name has at most {MAX_NAME} characters", code="name_too_long")
    return name.strip()


def check_name_one_code(name: Any, what: str) -> str:
    """Desktop flows, cloud flows, connection references, connections."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise RuleViolation(f"a {what} needs a name of 1 to {MAX_NAME} characters", code="empty_name")
    return name.strip()
