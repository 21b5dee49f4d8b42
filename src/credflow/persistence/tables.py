"""The schema. Only the persistence package imports SQLAlchemy; migrations make this schema."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    """32 hex characters that sort by creation time (lists page in creation order)."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


def _id() -> Mapped[str]:
    return mapped_column(String(32), primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


# --- tenancy and people ---------------------------------------------------------------------------------
class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = _id()
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = _id()
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Organization administrators manage every user; the bootstrap administrator is one.
    organization_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A disabled user's tokens and sessions answer 401; a removed user is disabled for good, keeps its row (the
    # owner of what it made until an administrator reassigns it) and frees its email.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    """A user's API token (personal access token): only its SHA-256 is kept. It stops at ``expires_at``, or when
    it is revoked (the row is deleted)."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # to the minute
    created_at: Mapped[datetime] = _created()


class WebSession(Base):
    """A signed-in browser: the cookie holds a random secret, only its SHA-256 is kept. Every replica reads the
    same rows, so a sign-out (the row is deleted) or a disabled user is seen everywhere and survives restarts."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    via: Mapped[str] = mapped_column(String(20))  # "password" | "oidc"
    client: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # to the minute
    created_at: Mapped[datetime] = _created()


class SsoLogin(Base):
    """A sign-in through the OpenID provider under way: a browser's (``kind`` "browser": the PKCE verifier, the
    nonce and where to go after) or a CLI's device authorization (``kind`` "device": the provider's device code,
    sealed). Found by the SHA-256 of the ``state`` (browser) or of the handle the CLI polls with (device), used
    once and deleted."""

    __tablename__ = "sso_logins"
    id: Mapped[str] = _id()
    kind: Mapped[str] = mapped_column(String(10))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str | None] = mapped_column(String(64))  # the pre-session cookie the state belongs to
    sealed: Mapped[str] = mapped_column(Text)  # sealed JSON: verifier, nonce, next; or device_code, interval
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = _created()


class EnvironmentRoleGrant(Base):
    __tablename__ = "environment_roles"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40))


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("env_id", "name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


# --- encryption barrier --------------------------------------------------------------------------------
class DataKey(Base):
    """One AES-256 data key per encrypted record, wrapped by the KEK ``kek_id``."""

    __tablename__ = "data_keys"
    id: Mapped[str] = _id()
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()


# --- secret stores ----------------------------------------------------------------------------------------
class SecretStore(Base):
    __tablename__ = "secret_stores"
    __table_args__ = (UniqueConstraint("env_id", "name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    vault_url: Mapped[str] = mapped_column(String(500))
    vault_url_norm: Mapped[str] = mapped_column(String(500), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the non-secret fields
    secret_config: Mapped[str | None] = mapped_column(Text)  # sealed JSON of the secret fields
    poll_interval_seconds: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class StoreAccess(Base):
    __tablename__ = "store_access"
    store_id: Mapped[str] = mapped_column(ForeignKey("secret_stores.id", ondelete="CASCADE"), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    allowed: Mapped[bool] = mapped_column(Boolean)


class BuiltinSecret(Base):
    """One version of a secret of a builtin store; the value sealed under the barrier."""

    __tablename__ = "builtin_secrets"
    __table_args__ = (UniqueConstraint("store_id", "name", "version"),)
    id: Mapped[str] = _id()
    store_id: Mapped[str] = mapped_column(ForeignKey("secret_stores.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(Integer)
    sealed_value: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # as written with PUT (migration 0006)
    created_at: Mapped[datetime] = _created()


class SecretHead(Base):
    """What credflow knows of one secret (store, name): its current version and how fresh that is."""

    __tablename__ = "secret_heads"
    __table_args__ = (UniqueConstraint("store_id", "name"),)
    id: Mapped[str] = _id()
    store_id: Mapped[str] = mapped_column(ForeignKey("secret_stores.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    current_version: Mapped[str | None] = mapped_column(String(200))
    version_seq: Mapped[int] = mapped_column(Integer, default=0)  # order of versions as credflow saw them
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CachedSecret(Base):
    """The version cache: one sealed value per (store, name, version), shared by every user of the secret."""

    __tablename__ = "secret_cache"
    __table_args__ = (UniqueConstraint("store_id", "name", "version"),)
    id: Mapped[str] = _id()
    store_id: Mapped[str] = mapped_column(ForeignKey("secret_stores.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    version: Mapped[str] = mapped_column(String(200))
    sealed_value: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = _created()
    # What the vault says of the version (migration 0006): when it was made, and when it expires (Key Vault's exp,
    # Secrets Manager's next rotation, Vault's custom_metadata.expires_at or delete_version_after, the builtin
    # store's expires_at), kept up to date by SecretNearExpiry / SecretExpired events.
    version_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- environment variables and credentials ---------------------------------------------------------------
class EnvironmentVariable(Base):
    __tablename__ = "environment_variables"
    __table_args__ = (
        UniqueConstraint("env_id", "schema_name"),
        Index("ix_variables_secret", "store_id", "secret_name"),
    )
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    schema_name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    value: Mapped[str | None] = mapped_column(Text)
    store_id: Mapped[str | None] = mapped_column(ForeignKey("secret_stores.id"))
    secret_name: Mapped[str | None] = mapped_column(String(500))
    secret_version: Mapped[str | None] = mapped_column(String(200))  # pinned version, or None for latest
    created_by: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class VariableGrant(Base):
    """Read on an environment variable, granted by sharing a credential that uses it. Never revoked by an
    unshare (the seed's rule)."""

    __tablename__ = "variable_grants"
    variable_id: Mapped[str] = mapped_column(
        ForeignKey("environment_variables.id", ondelete="CASCADE"), primary_key=True
    )
    principal_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("env_id", "name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    username_variable_id: Mapped[str] = mapped_column(ForeignKey("environment_variables.id"), index=True)
    password_variable_id: Mapped[str] = mapped_column(ForeignKey("environment_variables.id"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # A password older than this many days is reported not_rotated on the health page; None: no bound (0006).
    max_age_days: Mapped[int | None] = mapped_column(Integer)
    # How many runs may use it at once (a bot account with one session); None: no limit (migration 0007).
    max_concurrent_runs: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(40), default="active")
    # None: any desktop flow may run with it (the seed's behaviour); else only these desktop flow ids.
    allowed_desktop_flows: Mapped[list[str] | None] = mapped_column(JSON)
    # Verified rotation (migration 0008): a new password version runs this flow on this connection first; until
    # it exits 0 every connection stays on verified_version. Status: pending | passed | failed | None.
    verification_desktop_flow_id: Mapped[str | None] = mapped_column(String(32))
    verification_connection_id: Mapped[str | None] = mapped_column(String(32))
    verification_status: Mapped[str | None] = mapped_column(String(20))
    verification_detail: Mapped[str | None] = mapped_column(Text)
    verification_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verification_version: Mapped[str | None] = mapped_column(String(200))  # the candidate the status is about
    verification_run_id: Mapped[str | None] = mapped_column(String(32))
    verified_version: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class CredentialShare(Base):
    __tablename__ = "credential_shares"
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    principal_type: Mapped[str] = mapped_column(String(10))  # "user" | "team"
    role: Mapped[str] = mapped_column(String(20))
    granted_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


# --- machines, flows, connections, runs -----------------------------------------------------------------
class MachineRegistration(Base):
    __tablename__ = "machine_registrations"
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class Machine(Base):
    __tablename__ = "machines"
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    owner_id: Mapped[str | None] = mapped_column(String(32))  # who made its registration token
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # claims nothing
    created_at: Mapped[datetime] = _created()


class MachineGroup(Base):
    __tablename__ = "machine_groups"
    __table_args__ = (UniqueConstraint("env_id", "name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class MachineGroupMember(Base):
    __tablename__ = "machine_group_members"
    group_id: Mapped[str] = mapped_column(ForeignKey("machine_groups.id", ondelete="CASCADE"), primary_key=True)
    machine_id: Mapped[str] = mapped_column(
        ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class DesktopFlow(Base):
    __tablename__ = "desktop_flows"
    __table_args__ = (UniqueConstraint("env_id", "name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    command: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class Connection(Base):
    __tablename__ = "connections"
    # (credential_id, id): a page of a credential's connections is one index range, however many it has.
    # Partial indexes (migration 0008): the few connections a rotation writes, those held at a version of their own
    # and those secret_unreadable; the others follow their credential (secret_version null) and are not written.
    __table_args__ = (Index("ix_connections_credential_id", "credential_id", "id"),
                      Index("ix_connections_held", "credential_id", "secret_version",
                            sqlite_where=text("secret_version IS NOT NULL"),
                            postgresql_where=text("secret_version IS NOT NULL")),
                      Index("ix_connections_unreadable", "credential_id", "status",
                            sqlite_where=text("status = 'secret_unreadable'"),
                            postgresql_where=text("status = 'secret_unreadable'")))
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    machine_id: Mapped[str | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    machine_group_id: Mapped[str | None] = mapped_column(ForeignKey("machine_groups.id", ondelete="SET NULL"))
    credential_id: Mapped[str | None] = mapped_column(ForeignKey("credentials.id", ondelete="SET NULL"))
    sealed_username: Mapped[str | None] = mapped_column(Text)  # connections without a credential
    sealed_password: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(40), default="connected")
    secret_version: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_queue", "env_id", "status", "queued_at"),
                      Index("ix_runs_lease", "lease_credential_id", "status"),
                      Index("ix_runs_deadline", "status", "deadline_at"))
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    desktop_flow_id: Mapped[str] = mapped_column(ForeignKey("desktop_flows.id"))
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"), index=True)
    cloud_flow_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # Why a run ended other than by its flow's exit code 0: a stable code ("cancelled", "timed_out", ...) and a
    # sentence. Runs that ended before these were kept say it only in their log.
    reason: Mapped[str | None] = mapped_column(String(64))
    reason_detail: Mapped[str | None] = mapped_column(String(500))
    machine_id: Mapped[str | None] = mapped_column(String(32), index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    secret_version: Mapped[str | None] = mapped_column(String(200))
    verifies_version: Mapped[str | None] = mapped_column(String(200))  # a verification run receives this version
    log: Mapped[str | None] = mapped_column(Text)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=3 * 3600)
    created_by: Mapped[str | None] = mapped_column(String(32))
    queued_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Credential leases (migration 0007): the credential whose lease the run holds while it runs (set when it is
    # claimed), and when it was first held back waiting for a free lease.
    lease_credential_id: Mapped[str | None] = mapped_column(String(32))
    lease_waited_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the run times out (migration 0010): queued_at + timeout_seconds while it waits, started_at +
    # timeout_seconds once it runs; the scheduler finds the runs past it in ix_runs_deadline.
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConnectionReference(Base):
    __tablename__ = "connection_references"
    __table_args__ = (UniqueConstraint("env_id", "name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    connection_id: Mapped[str | None] = mapped_column(ForeignKey("connections.id", ondelete="SET NULL"))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class CloudFlow(Base):
    __tablename__ = "cloud_flows"
    __table_args__ = (UniqueConstraint("env_id", "name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    owner_id: Mapped[str | None] = mapped_column(String(32))
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()


# --- rotation ----------------------------------------------------------------------------------------------
class EventKey(Base):
    __tablename__ = "event_keys"
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()


class SecretEvent(Base):
    """A durable ``secret_version_changed`` waiting for (or done by) the worker."""

    __tablename__ = "secret_events"
    id: Mapped[str] = _id()
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    store_id: Mapped[str] = mapped_column(ForeignKey("secret_stores.id", ondelete="CASCADE"))
    secret_name: Mapped[str] = mapped_column(String(500))
    version: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(40))
    scope_user_id: Mapped[str | None] = mapped_column(String(32))  # None: system-administrator reach
    received_at: Mapped[datetime] = _created()
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


# --- health ------------------------------------------------------------------------------------------------
class NotificationHook(Base):
    """A URL told when a health finding of at least ``min_severity`` appears or clears; POSTs are signed with
    ``sealed_secret`` (sealed under the barrier, shown once when made)."""

    __tablename__ = "notification_hooks"
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    min_severity: Mapped[str] = mapped_column(String(10))
    sealed_secret: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class HookNotice(Base):
    """A finding a hook has been told of (and not yet told cleared): what was sent survives restarts."""

    __tablename__ = "hook_notices"
    hook_id: Mapped[str] = mapped_column(ForeignKey("notification_hooks.id", ondelete="CASCADE"), primary_key=True)
    finding_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    severity: Mapped[str] = mapped_column(String(10))
    finding: Mapped[dict[str, Any]] = mapped_column(JSON)  # as it was sent (never a secret value), to say it cleared
    sent_at: Mapped[datetime] = _created()


# --- solutions ---------------------------------------------------------------------------------------------
class Solution(Base):
    __tablename__ = "solutions"
    __table_args__ = (UniqueConstraint("env_id", "unique_name"),)
    id: Mapped[str] = _id()
    env_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    unique_name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(50))
    publisher: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()


class SolutionComponent(Base):
    __tablename__ = "solution_components"
    solution_id: Mapped[str] = mapped_column(ForeignKey("solutions.id", ondelete="CASCADE"), primary_key=True)
    component_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    component_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


# --- audit -------------------------------------------------------------------------------------------------
class AuditRecord(Base):
    """Append-only and hash-chained: ``hash`` covers the record's fields and ``prev_hash``."""

    __tablename__ = "audit_records"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    env_id: Mapped[str | None] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = _created()
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# --- lists paged in the database (migration 0005) --------------------------------------------------------
# An API list is one index range: its rows of one environment (and one filter) in the order of their
# time-ordered id (audit records: their sequence number), read from a cursor on.
LIST_INDEXES = (
    Index("ix_runs_env_id_id", Run.env_id, Run.id),
    Index("ix_runs_env_status_id", Run.env_id, Run.status, Run.id),
    Index("ix_runs_connection_id_id", Run.connection_id, Run.id),
    Index("ix_runs_desktop_flow_id_id", Run.desktop_flow_id, Run.id),
    Index("ix_runs_machine_id_id", Run.machine_id, Run.id),
    Index("ix_runs_env_created_by_id", Run.env_id, Run.created_by, Run.id),  # migration 0009: a basic user's runs
    Index("ix_connections_env_id_id", Connection.env_id, Connection.id),
    Index("ix_connections_env_status_id", Connection.env_id, Connection.status, Connection.id),
    Index("ix_connections_env_owner_id", Connection.env_id, Connection.owner_id, Connection.id),
    Index("ix_credentials_env_id_id", Credential.env_id, Credential.id),
    Index("ix_variables_env_id_id", EnvironmentVariable.env_id, EnvironmentVariable.id),
    Index("ix_machines_env_id_id", Machine.env_id, Machine.id),
    Index("ix_desktop_flows_env_id_id", DesktopFlow.env_id, DesktopFlow.id),
    Index("ix_audit_env_seq", AuditRecord.env_id, AuditRecord.seq),
    Index("ix_audit_env_actor_seq", AuditRecord.env_id, AuditRecord.actor, AuditRecord.seq),
    Index("ix_audit_env_at", AuditRecord.env_id, AuditRecord.at),
)
