"""The statuses a connection and a run can have. Both are ``StrEnum``s: a member is its string, so it is stored,
compared with ``==`` and written to JSON exactly as the plain string always was."""

from __future__ import annotations

from enum import StrEnum

from credflow.domain.errors import RuleViolation


class ConnectionStatus(StrEnum):
    """``connected``, or the reason the connection's runs cannot receive its values."""

    CONNECTED = "connected"
    ACCESS_REVOKED = "access_revoked"  # the owner may no longer use the credential (returns when access does)
    CREDENTIAL_DELETED = "credential_deleted"  # the credential was deleted (for good)
    SECRET_UNREADABLE = "secret_unreadable"  # the vault says the secret is gone, or has failed for too long


class RunStatus(StrEnum):
    """A run waits in its queue, runs on one machine, and ends succeeded (exit code 0), failed (its exit code, or
    a ``reason`` such as ``timed_out``) or cancelled (by a user, while it was queued or running)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def run_status_named(value: str) -> RunStatus:
    """The run status ``value`` names, or RuleViolation listing the statuses (a filter's ``?status=``)."""
    try:
        return RunStatus(value.strip().lower())
    except ValueError:
        allowed = [s.value for s in RunStatus]
        raise RuleViolation(f"a run's status is one of {', '.join(allowed)}", code="unknown_status",
                            allowed=allowed) from None



def connection_status_named(value: str) -> ConnectionStatus:
    """The connection status ``value`` names, or RuleViolation listing the statuses (a filter's ``?status=``)."""
    try:
        return ConnectionStatus(value.strip().lower())
    except ValueError:
        allowed = [s.value for s in ConnectionStatus]
        raise RuleViolation(f"a connection's status is one of {', '.join(allowed)}", code="unknown_status",
                            allowed=allowed) from None
