"""The errors every layer speaks. Each has a stable machine-readable code and an HTTP status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.extra = extra


class Malformed(DomainError):
    status, code, title = 400, "malformed", "Malformed request"


class Unauthenticated(DomainError):
    status, code, title = 401, "unauthenticated", "Not authenticated"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class TooLarge(DomainError):
    status, code, title = 413, "body_too_large", "Too large"


class RuleViolation(DomainError):
    status, code, title = 422, "rule_violation", "The request breaks a rule"


class TooManyRequests(DomainError):
    status, code, title = 429, "too_many_requests", "Too many requests"


class DatabaseUnavailable(DomainError):
    """The database did not answer (restarting, unreachable, locked too long); retry."""

    status, code, title = 503, "database_unavailable", "The database is unavailable"


class StorageFull(DomainError):
    """The database's disk is full: the write was not made (reads keep working); retry once space is freed."""

    status, code, title = 507, "storage_full", "The database's storage is full"
