"""The database side of backup and restore: a consistent online copy, and loading one into an empty target.

SQLite is copied with its online backup API (one step, under one read transaction: writers keep going in WAL
mode and the copy is the database as of one instant). PostgreSQL is dumped with ``pg_dump -Fc`` in the
snapshot of a transaction that also reads the facts of the manifest, so the dump and its manifest describe
the same instant. The copy holds what the database holds: sealed values, wrapped data keys, hashes; never a
master key.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, make_url, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from credflow.persistence.db import alembic_config
from credflow.persistence.tables import AuditRecord, DataKey


class BackupError(Exception):
    """The copy or the load could not be made; the message says why."""


@dataclass(frozen=True)
class Facts:
    """What a copy needs to be opened again: its schema revision, the KEKs its data keys are wrapped by,
    and the head (``SEQ:HASH``) of its audit chain."""

    schema_version: str | None
    key_ids: list[str]
    audit_head: str | None


def kind_of(url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"credflow backs up SQLite and PostgreSQL databases, not {backend}")
    return backend


def known_revisions() -> list[str]:
    """The schema revisions this code knows, oldest first (the last is the head)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


@contextmanager
def _database_errors() -> Iterator[None]:
    """A database that cannot be reached or read becomes a BackupError naming the driver's complaint."""
    try:
        yield
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        raise BackupError(f"the database: {str(orig or exc).strip().splitlines()[0]}") from None
    except sqlite3.Error as exc:
        raise BackupError(f"the database: {exc}") from None


def _facts(conn: Connection) -> Facts:
    if not {"alembic_version", DataKey.__tablename__, AuditRecord.__tablename__} <= set(
            inspect(conn).get_table_names()):
        raise BackupError("the database holds no credflow schema: start credflow on it once, or check the URL")
    version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    key_ids = sorted(conn.scalars(select(DataKey.kek_id).distinct()).all())
    head = conn.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
    return Facts(schema_version=version, key_ids=key_ids, audit_head=f"{head.seq}:{head.hash}" if head else None)


# --- SQLite --------------------------------------------------------------------------------------------------
def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into")
    return Path(database)


def copy_sqlite(source: Path, dest: Path) -> Facts:
    """Copy the live database at ``source`` into the new file ``dest`` and read the copy's facts."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    with _database_errors(), closing(sqlite3.connect(source, timeout=30)) as src, \
            closing(sqlite3.connect(dest)) as dst:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)  # all pages in one step: the copy is one instant of the database
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    return sqlite_facts(dest)


def sqlite_facts(path: Path) -> Facts:
    """The facts of a SQLite copy, after checking that it is a sound database."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the database copy is not a SQLite database: {exc}") from None
    if not verdict or verdict[0] != "ok":
        raise BackupError(f"the database copy is damaged: {verdict[0] if verdict else 'no answer'}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with _database_errors(), engine.connect() as conn:
            return _facts(conn)
    finally:
        engine.dispose()


def sqlite_is_empty(target: Path) -> bool:
    if not target.exists() or target.stat().st_size == 0:
        return True
    with _database_errors(), closing(sqlite3.connect(target, timeout=30)) as conn:
        return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0


def load_sqlite(copy: Path, target: Path) -> None:
    """Replace the database at ``target`` (made if missing) by ``copy``, in one transaction of the backup API,
    so that a -wal file of an earlier database beside it is taken into account rather than replayed later."""
    with _database_errors(), closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(target, timeout=30)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{target}{suffix}")
        if path.exists():
            path.chmod(0o600)


# --- PostgreSQL ----------------------------------------------------------------------------------------------
def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client of the server's major version")
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for ``url`` (no password in it: that goes in PGPASSWORD) and the environment."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = URL.create("postgresql", username=parsed.username, host=parsed.host, port=parsed.port,
                       database=parsed.database, query=parsed.query)
    return plain.render_as_string(hide_password=False), env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")


def dump_postgres(url: str, dest: Path) -> Facts:
    """``pg_dump -Fc`` of the database into ``dest``, in the snapshot the facts are read in."""
    pg_dump = _binary("pg_dump")
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with _database_errors(), engine.connect() as conn:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = _facts(conn)
            uri, env = _libpq(url)
            _run([pg_dump, "--no-password", "--format=custom", f"--snapshot={snapshot}", f"--file={dest}",
                  f"--dbname={uri}"], env)
            conn.rollback()
    finally:
        engine.dispose()
    return facts


def check_postgres_dump(dump: Path) -> None:
    """Fail unless ``dump`` is a custom-format archive pg_restore can read."""
    _run([_binary("pg_restore"), "--list", str(dump)], dict(os.environ))


_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    engine = create_engine(url)
    try:
        with _database_errors(), engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _user_relations(conn: Connection) -> list[tuple[str, str]]:
    """(kind, qualified name) of each table, view and sequence outside PostgreSQL's own schemas."""
    rows = conn.execute(text(
        "SELECT c.relkind, format('%I.%I', n.nspname, c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND {_USER_SCHEMAS}")).all()
    return [(row[0], row[1]) for row in rows]


def postgres_is_empty(url: str) -> bool:
    with _connection(url) as conn:
        return not _user_relations(conn)


def restore_postgres(url: str, dump: Path, *, clear: bool) -> None:
    """Load ``dump`` into the database at ``url`` with ``pg_restore``, in one transaction. ``clear`` drops
    the tables, views and sequences there first (in a transaction of its own, before the load)."""
    pg_restore = _binary("pg_restore")
    if clear:
        with _connection(url) as conn:
            relations = _user_relations(conn)
            for kinds, what in ((("v",), "VIEW"), (("m",), "MATERIALIZED VIEW"), (("r", "p"), "TABLE"),
                                (("S",), "SEQUENCE")):
                names = [name for kind, name in relations if kind in kinds]
                if names:
                    conn.execute(text(f"DROP {what} IF EXISTS {', '.join(names)} CASCADE"))
            conn.commit()
    uri, env = _libpq(url)
    _run([pg_restore, "--no-password", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
          f"--dbname={uri}", str(dump)], env)
