"""Finding a row by what a caller names it: a row of an environment by its id or its name, a user by id or email."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credflow.domain.errors import NotFound
from credflow.persistence.tables import User

T = TypeVar("T")


def row_in_env(s: Session, table: type[T], env_id: str, ref: str, name: Any = None) -> T | None:
    """The row of ``table`` in the environment whose id is ``ref``, else the one whose name is ``ref`` (the column
    ``name``, by default ``table.name``); None when there is neither."""
    rows: Any = table
    row = s.get(rows, ref)
    if row is not None and row.env_id == env_id:
        return row
    column = rows.name if name is None else name
    return s.scalar(select(rows).where(rows.env_id == env_id, column == ref))


def find_in_env(s: Session, table: type[T], env_id: str, ref: str, what: str, code: str, name: Any = None) -> T:
    """``row_in_env``, or 404 ``{what} 'ref' not found`` with the error code ``code``."""
    row = row_in_env(s, table, env_id, ref, name)
    if row is None:
        raise NotFound(f"{what} {ref!r} not found", code=code)
    return row


def user_by_id_or_email(s: Session, ref: str) -> User | None:
    """The user whose id is ``ref``, else the one whose email is ``ref`` (in any case); of any organization."""
    return s.get(User, ref) or s.scalar(select(User).where(func.lower(User.email) == ref.lower()))
