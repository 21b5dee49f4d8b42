"""Backup and restore: one file with a consistent copy of the database, ciphertext only, and its manifest.

The file is a gzip-compressed tar with two members:

- ``manifest.json``: the format, when it was made, the kind of database, its schema version (the Alembic
  revision), the ids of the master keys (KEKs) its data keys are wrapped by, the head of its audit chain
  (``SEQ:HASH``), the name of the database member and its SHA-256.
- ``database.sqlite3`` (a SQLite database file, from SQLite's online backup API) or ``database.pgdump``
  (``pg_dump`` custom format, taken in the snapshot the manifest was read in).

A master key is never read here, so never in a backup: restoring needs the KEKs the manifest names, from the
target's key file or ``CREDFLOW_MASTER_KEY``. Restore checks everything before it changes anything: the
schema must be one this code knows, the KEKs must be there, the target must be empty (or ``force``), and the
database member must match the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from credflow import __version__
from credflow.crypto.envelope import Keyring, KeyringError
from credflow.persistence import backup as db_backup
from credflow.persistence.backup import BackupError
from credflow.settings import Settings

FORMAT = "credflow-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MEMBERS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}


class BackupProblem(Exception):
    """A backup could not be made, or a restore was refused; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    created_at: str
    database: str  # "sqlite" | "postgresql"
    schema_version: str | None
    key_ids: list[str]
    audit_head: str | None
    member: str
    member_sha256: str
    credflow_version: str = __version__
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
        except ValueError:
            raise BackupProblem("the manifest of this file is not JSON: it is not a credflow backup") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupProblem("this file is not a credflow backup (its manifest names another format)")
        if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
            raise BackupProblem(f"this backup is in format {data.get('format_version')!r}, newer than this credflow "
                                f"({__version__}) reads: restore it with credflow {data.get('credflow_version')} "
                                "or newer")
        try:
            manifest = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise BackupProblem(f"the manifest of this backup is incomplete: {exc}") from None
        if manifest.database not in MEMBERS or manifest.member != MEMBERS[manifest.database]:
            raise BackupProblem(f"the manifest names an unknown database kind {manifest.database!r}")
        if not isinstance(manifest.key_ids, list) or not all(isinstance(k, str) for k in manifest.key_ids):
            raise BackupProblem("the manifest's key_ids is not a list of key ids")
        return manifest

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _workdir(parent: Path | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=".credflow-backup-", dir=parent))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info


# --- backup --------------------------------------------------------------------------------------------------
def backup(settings: Settings, file: Path) -> Manifest:
    """Write a backup of the database ``settings`` name to ``file`` (replaced atomically, mode 0600). Safe
    while the server runs and writes."""
    url = settings.resolved_database_url()
    file = file.absolute()
    if not file.parent.is_dir():
        raise BackupProblem(f"{file.parent} is not a directory")
    try:
        kind = db_backup.kind_of(url)
        with _workdir(file.parent) as work:
            member = work / MEMBERS[kind]
            if kind == "sqlite":
                facts = db_backup.copy_sqlite(db_backup.sqlite_path(url), member)
            else:
                facts = db_backup.dump_postgres(url, member)
            manifest = Manifest(created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                                database=kind, schema_version=facts.schema_version, key_ids=facts.key_ids,
                                audit_head=facts.audit_head, member=member.name, member_sha256=_sha256(member))
            archive = work / "backup.tar.gz"
            fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                body = manifest.to_json()
                tar.addfile(_tar_info(MANIFEST, len(body)), BytesIO(body))
                with member.open("rb") as fh:
                    tar.addfile(_tar_info(member.name, member.stat().st_size), fh)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(archive, file)
    except BackupError as exc:
        raise BackupProblem(str(exc)) from None
    return manifest


# --- restore -------------------------------------------------------------------------------------------------
def read_manifest(file: Path) -> Manifest:
    try:
        with tarfile.open(file, "r:*") as tar:
            return Manifest.from_json(_member_bytes(tar, MANIFEST))
    except FileNotFoundError:
        raise BackupProblem(f"there is no file {file}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupProblem(f"{file} is not a credflow backup: {exc}") from None


def _member_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        fh = tar.extractfile(name)
    except KeyError:
        fh = None
    if fh is None:
        raise BackupProblem(f"this file is not a credflow backup: it holds no {name}")
    return fh.read()


def _available_key_ids(settings: Settings) -> tuple[set[str], str]:
    """The ids of the KEKs the target would run with, and a sentence saying where they come from. Reads, never
    creates, the key file."""
    try:
        if settings.master_key:
            ids = set(Keyring.from_env_value(settings.master_key).keys)
            return ids, f"CREDFLOW_MASTER_KEY holds {_ids(ids)}"
        if settings.key_file.exists():
            ids = set(Keyring.from_file(settings.key_file).keys)
            return ids, f"the key file {settings.key_file} holds {_ids(ids)}"
    except (KeyringError, ValueError, KeyError) as exc:
        raise BackupProblem(f"the target's master key cannot be read: {exc}. Nothing was changed.") from None
    return set(), f"there is no key file {settings.key_file} and CREDFLOW_MASTER_KEY is unset"


def _ids(ids: set[str]) -> str:
    return f"key(s) {', '.join(sorted(ids))}" if ids else "no key"


def _check_schema(manifest: Manifest) -> None:
    known = db_backup.known_revisions()
    if manifest.schema_version is not None and manifest.schema_version not in known:
        raise BackupProblem(
            f"this backup's schema is revision {manifest.schema_version}, newer than this credflow ({__version__}) "
            f"knows (its newest is {known[-1]}): restore it with credflow {manifest.credflow_version} or newer. "
            "Nothing was changed.")


def _check_keys(settings: Settings, manifest: Manifest) -> None:
    available, where = _available_key_ids(settings)
    missing = [k for k in manifest.key_ids if k not in available]
    if missing:
        raise BackupProblem(
            f"this backup needs master key(s) {', '.join(missing)}, which the target does not have: {where}. "
            f"Put the escrowed key file at {settings.key_file} (or set CREDFLOW_MASTER_KEY) and run restore "
            "again. Nothing was changed.")


def _extract(file: Path, manifest: Manifest, work: Path) -> Path:
    dest = work / manifest.member
    try:
        with tarfile.open(file, "r:*") as tar:
            try:
                src = tar.extractfile(manifest.member)
            except KeyError:
                src = None
            if src is None:
                raise BackupProblem(f"this backup holds no {manifest.member}: the file is damaged")
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with src, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupProblem(f"the backup cannot be read: {exc}") from None
    if _sha256(dest) != manifest.member_sha256:
        raise BackupProblem("the database in this backup does not match its manifest's checksum: the file is "
                            "damaged. Nothing was changed.")
    return dest


def _check_copy(copy: Path, manifest: Manifest) -> None:
    if manifest.database == "postgresql":
        db_backup.check_postgres_dump(copy)
        return
    facts = db_backup.sqlite_facts(copy)
    held = (facts.schema_version, facts.key_ids, facts.audit_head)
    if held != (manifest.schema_version, sorted(manifest.key_ids), manifest.audit_head):
        raise BackupProblem("the manifest of this backup does not describe its database (schema, keys or audit "
                            "head differ): the file was changed. Nothing was changed.")


def restore(settings: Settings, file: Path, *, force: bool = False) -> Manifest:
    """Load the backup ``file`` into the database ``settings`` name: an empty one (a fresh data directory or
    an empty PostgreSQL database) unless ``force``. Stop the server of the target first."""
    manifest = read_manifest(file)
    _check_schema(manifest)
    url = settings.resolved_database_url()
    try:
        kind = db_backup.kind_of(url)
        if kind != manifest.database:
            raise BackupProblem(f"this backup is of a {manifest.database} database and the target is {kind}: "
                                f"restore it into a {manifest.database} database. Nothing was changed.")
        _check_keys(settings, manifest)
        target = db_backup.sqlite_path(url) if kind == "sqlite" else None
        empty = db_backup.sqlite_is_empty(target) if target is not None else db_backup.postgres_is_empty(url)
        if not empty and not force:
            where = target if target is not None else "the target PostgreSQL database"
            raise BackupProblem(f"{where} already holds a credflow database: restore into a fresh data directory "
                                "or an empty database, or pass --force to replace it (stop its server first). "
                                "Nothing was changed.")
        with _workdir(None) as work:
            copy = _extract(file, manifest, work)
            _check_copy(copy, manifest)
            if target is not None:
                settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                db_backup.load_sqlite(copy, target)
            else:
                db_backup.restore_postgres(url, copy, clear=not empty)
    except BackupError as exc:
        raise BackupProblem(str(exc)) from None
    return manifest
