"""Engine, sessions and schema migration. SQLite (WAL) by default; PostgreSQL by URL.

A database that cannot answer (PostgreSQL restarting or unreachable, SQLite locked for too long) makes a unit of
work raise ``DatabaseUnavailable`` (503) and a full disk ``StorageFull`` (507); the transaction is rolled back
either way. PostgreSQL connections are checked before use (``pool_pre_ping``), so after an outage the pool
replaces its dead connections by itself.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from credflow.domain.errors import DatabaseUnavailable, DomainError, StorageFull

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
CONNECT_TIMEOUT_SECONDS = 5  # PostgreSQL: a server that does not answer fails the request instead of hanging it
# SQLite result codes (the low byte of an extended code) that mean the file cannot be used now.
SQLITE_FULL = 13
SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 14, 15})  # BUSY LOCKED NOMEM READONLY IOERR CANTOPEN PROTOCOL
# PostgreSQL SQLSTATE: disk full; and the classes and codes of a server that is gone, starting or stopping.
PG_DISK_FULL = "53100"
PG_UNAVAILABLE_CLASSES = ("08", "53", "57P")  # connection exception, insufficient resources, operator intervention


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20)
        _sqlite_pragmas(engine)
        return engine
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, connect_args=connect_args)


def storage_error(exc: DBAPIError) -> DomainError | None:
    """The domain error for a database that cannot work now (unavailable, or its disk full), else None."""
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if sqlite_code is not None:
        if sqlite_code & 0xFF == SQLITE_FULL:
            return StorageFull("the database's disk is full; nothing was written")
        if sqlite_code & 0xFF in SQLITE_UNAVAILABLE:
            return DatabaseUnavailable("the database cannot be used now; try again")
        return None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == PG_DISK_FULL:
        return StorageFull("the database's disk is full; nothing was written")
    no_answer = sqlstate is None and isinstance(exc, OperationalError | InterfaceError)  # could not connect
    if exc.connection_invalidated or no_answer or (sqlstate or "").startswith(PG_UNAVAILABLE_CLASSES):
        return DatabaseUnavailable("the database is unavailable; try again")
    return None


@contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        err = storage_error(exc)
        if err is None:
            raise
        # The class and code only: a driver's message may quote the statement's parameters.
        log.warning("database: %s (%s)", err.code, type(exc.orig).__name__)
        raise err from exc


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin below decide
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Take the write lock up front: two deferred transactions that both upgrade would deadlock.
        read_only = conn.get_execution_options().get("credflow_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def restrict_sqlite_files(engine: Engine) -> None:
    """A SQLite database and its WAL files are readable by their owner only (0600), also when they existed."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        path = Path(engine.url.database + suffix)
        if path.exists():
            path.chmod(0o600)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration's revision (read once per process: the migration files do not change under it)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def migrate(engine: Engine) -> None:
    """Bring the schema to head (also on first start). A schema already at head costs one query."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head_revision():
            return
        conn.rollback()
        # A batch migration on SQLite rebuilds a table (create, copy, drop, rename): with foreign keys on, dropping
        # a table that others refer to would delete (cascade) their rows. SQLite reads the pragma only outside a
        # transaction, so it is set on the driver's connection before the migration's transaction begins.
        raw = conn.connection.driver_connection if sqlite else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False)
        self._read_factory = sessionmaker(engine.execution_options(credflow_read_only=True),
                                          expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any error."""
        with _storage_errors(), self._factory() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (no write lock on SQLite)."""
        with _storage_errors(), self._read_factory() as session:
            try:
                yield session
            finally:
                session.rollback()
