"""The name of a thing in an environment: a string that is not blank, at most 200 characters long, kept without
the blanks around it.

One validator, ``check_name``, refuses a name the ways the API has always answered:

- by default a blank name is ``empty_name`` ("a machine needs a non-empty name") and a long one
  ``name_too_long`` ("a machine name has at most 200 characters"): machines, machine groups, credentials, teams;
- with ``one_code`` both are ``empty_name`` ("a cloud flow needs a name of 1 to 200 characters"): desktop
  flows, cloud flows, connection references, connections;
- the length counts the blanks around the name, except with ``count_blanks=False`` (teams).
"""

from __future__ import annotations

from typing import Any

from credflow.domain.errors import RuleViolation

MAX_NAME = 200


def check_name(name: Any, what: str, *, one_code: bool = False, count_blanks: bool = True) -> str:
    """``name`` without its surrounding blanks, or RuleViolation naming ``what`` (e.g. "machine group")."""
    kept = name.strip() if isinstance(name, str) else ""
    too_long = bool(kept) and len(name if count_blanks else kept) > MAX_NAME
    if one_code and (not kept or too_long):
        raise RuleViolation(f"a {what} needs a name of 1 to {MAX_NAME} characters", code="empty_name")
    if not kept:
        raise RuleViolation(f"a {what} needs a non-empty name", code="empty_name")
    if too_long:
        raise RuleViolation(f"a {what} name has at most {MAX_NAME} characters", code="name_too_long")
    return kept
