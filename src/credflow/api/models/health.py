"""Credential health: findings and notification hooks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from credflow.api.models.common import Public, Timestamp, absent_if_none

Severity = Literal["critical", "warning", "info"]


class Finding(Public):
    id: str = Field(description="stable while the finding holds")
    severity: Severity
    kind: str = Field(description="expired, expires_soon, unreadable, stale, not_rotated, verification_failed, "
                                  "unused or lease_contention")
    credential: str | None = Field(None, exclude_if=absent_if_none)
    credential_name: str | None = Field(None, exclude_if=absent_if_none)
    variable: str | None = Field(None, exclude_if=absent_if_none)
    connection: str | None = Field(None, exclude_if=absent_if_none)
    connection_name: str | None = Field(None, exclude_if=absent_if_none)
    expires_at: Timestamp | None = Field(None, exclude_if=absent_if_none,
                                         description="expired and expires_soon: when the version expires")
    detail: str
    since: Timestamp | None = Field(description="since when the finding holds")


class SeverityCounts(Public):
    critical: int
    warning: int
    info: int


class HealthReport(Public):
    """The findings the caller may see, worst first."""

    items: list[Finding]
    counts: SeverityCounts


class NotificationHookPublic(Public):
    id: str
    url: str = Field(description="the URL cut to its host and first path segment (the whole URL is kept sealed)")
    min_severity: Severity
    environment: str
    created_by: str | None
    created_at: Timestamp


class NotificationHookCreated(NotificationHookPublic):
    secret: str = Field(description="the signing secret, shown this once: X-Credflow-Signature is sha256=<hex>, "
                                    "the HMAC-SHA256 of '<X-Credflow-Timestamp>.<body>' under it")
