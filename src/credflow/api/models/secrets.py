"""Secret stores, builtin secrets, the prerequisite report, and rotation (event keys, Event Grid)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from credflow.api.models.common import Public, Timestamp


class SecretStorePublic(Public):
    id: str
    name: str
    kind: str = Field(description="builtin, hashicorp-vault, azure-keyvault or aws-secretsmanager")
    vault_url: str
    config: dict[str, Any] = Field(description="the kind's settings without their secret (write-only) fields")
    environment: str
    created_at: Timestamp


class StoreKindPublic(Public):
    kind: str
    viable: bool
    detail: str | None = Field(description="why the kind cannot be used here; null when it can")
    install: str | None = Field(description="the command that makes the kind usable, when one does")
    config_schema: dict[str, Any] | None = Field(
        description="the JSON schema of the kind's config, secret fields marked writeOnly; null when its plugin "
                    "could not be loaded")


class StoreKindList(Public):
    items: list[StoreKindPublic]
    next_cursor: str | None = Field(description="always null: every kind fits on one page")


class StoreAccessPublic(Public):
    store: str
    principal: str
    principal_type: str = Field(description="user or team")
    allowed: bool


class SecretPublic(Public):
    """A secret of a builtin store: its name and latest version, never its value."""

    name: str
    version: str


class SecretVersionPublic(SecretPublic):
    created_at: Timestamp
    expires_at: Timestamp | None = Field(None, description="when this version stops being good, if it was given")


class StoreCheck(Public):
    check: str = Field(description="reachable, service_can_read, caller_may_use, same_tenant, ...")
    ok: bool
    detail: str


class StoreCheckReport(Public):
    store: str
    ok: bool = Field(description="every check passed")
    checks: list[StoreCheck]


class Accepted(Public):
    accepted: bool
    connections: int = Field(description="how many connections the notice moves to the vault's current version: "
                                         "those on a credential whose password follows the secret (not pinned to "
                                         "a version), of the caller's reach (every one for a system "
                                         "administrator, else the caller's own)")


class EventKeyPublic(Public):
    id: str
    environment: str
    created_at: Timestamp


class EventKeyCreated(EventKeyPublic):
    key: str = Field(description="the event key: shown only here")


class FollowedSecret(Public):
    store: str
    store_name: str
    name: str
    current_version: str | None
    connections: int
    secret_checked_at: Timestamp | None
    secret_age_seconds: int | None
    secret_stale_since: Timestamp | None
    secret_error: str | None


class StoreActivity(Public):
    store: str
    name: str
    poll_interval_seconds: int
    vault_reads: int = Field(description="reads of the vault by this server process")
    version_checks: int


class RotationStatus(Public):
    pending_events: int
    secrets: list[FollowedSecret]
    stores: list[StoreActivity]


class SubscriptionValidation(Public):
    """The answer to Event Grid's ``Microsoft.EventGrid.SubscriptionValidationEvent``."""

    validationResponse: str  # Event Grid's spelling


class DeliveryResult(Public):
    accepted: int
    duplicates: int
    ignored: int
