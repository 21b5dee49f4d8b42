"""The statuses a connection and a run can have. Both are ``StrEnum``s: a member is its string, so it is stored,
compared with ``==`` and written to JSON exactly as the plain string always was."""

from __future__ import annotations

from enum import StrEnum


class ConnectionStatus(StrEnum):
    """``connected``, or the reason the connection's runs cannot receive its values."""

    CONNECTED = "connected"
    ACCESS_REVOKED = "access_revoked"  # the owner may no longer use the credential (returns when access does)
    CREDENTIAL_DELETED = "credential_deleted"  # the credential was deleted (for good)
    SECRET_UNREADABLE = "secret_unreadable"  # the vault says the secret is gone, or has failed for too long


class RunStatus(StrEnum):
    """A run waits in its queue, runs on one machine, and ends succeeded (exit code 0) or failed."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

