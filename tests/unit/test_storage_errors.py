"""Which database failures become 503 ``database_unavailable`` and 507 ``storage_full``, and which stay errors."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from credflow.domain.errors import DatabaseUnavailable, StorageFull
from credflow.persistence.db import storage_error


def _sqlite(code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("sqlite says no")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


class _Pg(psycopg.OperationalError):
    def __init__(self, sqlstate: str | None) -> None:
        self._state = sqlstate
        super().__init__("postgresql says no")

    @property
    def sqlstate(self) -> str | None:  # type: ignore[override]
        return self._state


@pytest.mark.parametrize(("exc", "expected"), [
    (OperationalError("INSERT", {}, _sqlite(13)), StorageFull),  # SQLITE_FULL
    (OperationalError("INSERT", {}, _sqlite(5)), DatabaseUnavailable),  # SQLITE_BUSY after the busy timeout
    (OperationalError("INSERT", {}, _sqlite(778)), DatabaseUnavailable),  # SQLITE_IOERR_WRITE
    (OperationalError("SELECT", {}, _sqlite(1)), None),  # SQLITE_ERROR: a bug, not an outage
    (OperationalError("INSERT", {}, _Pg("53100")), StorageFull),  # disk_full
    (OperationalError("SELECT", {}, _Pg("57P01")), DatabaseUnavailable),  # admin_shutdown (pg_ctl restart)
    (OperationalError("SELECT", {}, _Pg("57P03")), DatabaseUnavailable),  # cannot_connect_now (starting up)
    (OperationalError("SELECT", {}, _Pg("08006")), DatabaseUnavailable),  # connection_failure
    (OperationalError("connect", {}, _Pg(None)), DatabaseUnavailable),  # connection refused
    (DBAPIError("SELECT", {}, _Pg("XX000"), connection_invalidated=True), DatabaseUnavailable),
    (ProgrammingError("SELECT", {}, _Pg("42601")), None),  # a syntax error
    (IntegrityError("INSERT", {}, _Pg("23505")), None),  # a unique violation is the caller's to handle
])
def test_storage_errors(exc: DBAPIError, expected: type | None) -> None:
    got = storage_error(exc)
    assert (type(got) if got is not None else None) is expected
    if got is not None:
        assert (got.status, got.code) == ((507, "storage_full") if expected is StorageFull
                                          else (503, "database_unavailable"))
