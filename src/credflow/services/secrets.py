"""The version cache: one sealed value per (store, secret, version), shared by every credential, connection
and run that uses the secret. Runs read here; the vault is asked only for a version credflow lacks."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credflow.persistence.tables import CachedSecret, SecretHead, SecretStore, utcnow
from credflow.services.core import Core
from credflow.services.secret_stores import open_store
from credflow.stores.base import SecretValue


@dataclass(frozen=True)
class Resolved:
    value: str
    version: str


def _aad(store_id: str, name: str, version: str) -> str:
    return f"cache:{store_id}:{name}:{version}"


def cached(core: Core, s: Session, store_id: str, name: str, version: str) -> Resolved | None:
    row = s.scalar(select(CachedSecret).where(CachedSecret.store_id == store_id, CachedSecret.name == name,
                                              CachedSecret.version == version))
    if row is None:
        return None
    return Resolved(core.barrier.open(s, row.sealed_value, _aad(store_id, name, version)), version)


def remember(core: Core, s: Session, store_id: str, name: str, got: SecretValue) -> None:
    if s.scalar(select(CachedSecret.id).where(CachedSecret.store_id == store_id, CachedSecret.name == name,
                                              CachedSecret.version == got.version)):
        return
    row = CachedSecret(store_id=store_id, name=name, version=got.version,
                       sealed_value=core.barrier.seal(s, got.value, _aad(store_id, name, got.version)))
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        pass  # another worker cached the same version first


def head(s: Session, store_id: str, name: str) -> SecretHead:
    row = s.scalar(select(SecretHead).where(SecretHead.store_id == store_id, SecretHead.name == name))
    if row is None:
        row = SecretHead(store_id=store_id, name=name, version_seq=0)
        s.add(row)
        s.flush()
    return row


def fetch(core: Core, s: Session, store: SecretStore, name: str, version: str | None = None) -> Resolved:
    """Read from the vault (latest when ``version`` is None), cache it and, for the latest, move the head."""
    got = open_store(core, s, store).read(name, version)
    remember(core, s, store.id, name, got)
    if version is None:
        h = head(s, store.id, name)
        if h.current_version != got.version:
            h.current_version = got.version
            h.version_seq += 1
        h.checked_at, h.error_code, h.error_since = utcnow(), None, None
    return Resolved(got.value, got.version)


def resolve(core: Core, s: Session, store: SecretStore, name: str, pinned: str | None = None) -> Resolved:
    """The value a run gets: the pinned version, or the current one credflow knows, from the cache first."""
    version = pinned
    if version is None:
        h = s.scalar(select(SecretHead).where(SecretHead.store_id == store.id, SecretHead.name == name))
        version = h.current_version if h is not None else None
    if version is not None:
        hit = cached(core, s, store.id, name, version)
        if hit is not None:
            return hit
    return fetch(core, s, store, name, pinned)
