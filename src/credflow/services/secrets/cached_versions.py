"""The version cache's rows: one sealed value per (store, secret, version), shared by every credential,
connection and run that uses the secret. Below ``secret_stores`` (a builtin write keeps the version it makes, so
that nothing reads it back) and ``cache`` (every other way a version gets here, and the vault calls).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credflow.persistence.tables import CachedSecret
from credflow.services.core import Core
from credflow.stores.base import SecretValue


@dataclass(frozen=True)
class Resolved:
    value: str
    version: str

    def __repr__(self) -> str:  # never show the value
        return f"Resolved(version={self.version!r}, value=***)"


def _aad(store_id: str, name: str, version: str) -> str:
    return f"cache:{store_id}:{name}:{version}"


def has(s: Session, store_id: str, name: str, version: str) -> bool:
    return s.scalar(select(CachedSecret.id).where(CachedSecret.store_id == store_id, CachedSecret.name == name,
                                                  CachedSecret.version == version)) is not None


def cached(core: Core, s: Session, store_id: str, name: str, version: str) -> Resolved | None:
    row = s.scalar(select(CachedSecret).where(CachedSecret.store_id == store_id, CachedSecret.name == name,
                                              CachedSecret.version == version))
    return opened(core, s, row) if row is not None else None


def opened(core: Core, s: Session, row: CachedSecret) -> Resolved:
    """The value of a cached version already read."""
    return Resolved(core.barrier.open(s, row.sealed_value, _aad(row.store_id, row.name, row.version)), row.version)


def remember(core: Core, s: Session, store_id: str, name: str, got: SecretValue) -> None:
    """Cache the version, with its creation and expiry as the vault gave them (an expiry that changed since is
    taken over)."""
    if has(s, store_id, name, got.version):
        if got.expires_at is not None:
            s.execute(update(CachedSecret).where(
                CachedSecret.store_id == store_id, CachedSecret.name == name, CachedSecret.version == got.version,
                or_(CachedSecret.expires_at.is_(None), CachedSecret.expires_at != got.expires_at))
                .values(expires_at=got.expires_at).execution_options(synchronize_session=False))
        return
    try:
        with s.begin_nested():
            s.add(_row(core, s, store_id, name, got))
    except IntegrityError:
        pass  # another worker cached the same version first


def keep(core: Core, s: Session, store_id: str, name: str, got: SecretValue) -> None:
    """Cache a version that is new in ``s``'s transaction (a builtin write's own), without looking first."""
    s.add(_row(core, s, store_id, name, got))


def _row(core: Core, s: Session, store_id: str, name: str, got: SecretValue) -> CachedSecret:
    return CachedSecret(store_id=store_id, name=name, version=got.version,
                        sealed_value=core.barrier.seal(s, got.value, _aad(store_id, name, got.version)),
                        version_created_at=got.created_at, expires_at=got.expires_at)
