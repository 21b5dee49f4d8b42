"""When the versions credflow serves expire, as the vaults say: recorded with each version read (the cache), and
changed at once by Key Vault's SecretNearExpiry and SecretExpired events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from credflow.persistence.tables import CachedSecret, SecretHead, SecretStore, utcnow
from credflow.stores.base import split_field

NEAR_EXPIRY_DAYS = 30  # Key Vault sends SecretNearExpiry this long before a version's exp


def _names(name: str) -> ColumnElement[bool]:
    """The cache's names of a secret: the secret itself and any ``#FIELD`` of it."""
    base, _ = split_field(name)
    return or_(CachedSecret.name == base, CachedSecret.name.startswith(f"{base}#", autoescape=True))


def from_event(kind: str, exp: float | None, now: datetime | None = None) -> datetime:
    """The expiry an event tells: its ``EXP`` (epoch seconds); without one, now for SecretExpired and
    ``NEAR_EXPIRY_DAYS`` ahead for SecretNearExpiry."""
    now = now or utcnow()
    if exp is not None:
        try:
            return datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return now if kind.endswith("expired") else now + timedelta(days=NEAR_EXPIRY_DAYS)


def record(s: Session, store: SecretStore, name: str, version: str | None, expires_at: datetime) -> int:
    """Set the expiry of ``version`` of the secret (the version credflow serves when None); how many cached
    versions took it."""
    versions: list[str]
    if version:
        versions = [version]
    else:
        base, _ = split_field(name)
        heads = select(SecretHead.current_version).where(
            SecretHead.store_id == store.id, or_(SecretHead.name == base,
                                                 SecretHead.name.startswith(f"{base}#", autoescape=True)),
            SecretHead.current_version.is_not(None))
        versions = [v for v in s.scalars(heads).all() if v]
    if not versions:
        return 0
    done = s.execute(update(CachedSecret).where(CachedSecret.store_id == store.id, _names(name),
                                                CachedSecret.version.in_(versions))
                     .values(expires_at=expires_at).execution_options(synchronize_session=False))
    return int(done.rowcount or 0)  # type: ignore[attr-defined]
