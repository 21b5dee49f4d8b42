"""What every response shares: the timestamp type, the list page and the problem details."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

T = TypeVar("T")

# Timestamps leave the services already formatted (RFC 3339, UTC, ``Z``); they pass through as they are.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def absent_if_none(value: Any) -> bool:
    """For ``Field(exclude_if=...)``: a member the service leaves out rather than sending null."""
    return value is None


class Public(BaseModel):
    """Base of the response models."""


class Page(Public, Generic[T]):
    """A page of a list: ``?limit=`` (default 50, at most 500) and ``?cursor=`` (the ``next_cursor`` of the page
    before)."""

    items: list[T]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class FieldProblem(BaseModel):
    field: str = Field(description="where, e.g. a dotted path in the body")
    problem: str = Field(description="what is wrong (never the offending value)")


class Problem(BaseModel):
    """Problem details (RFC 9457), sent as ``application/problem+json``. ``code`` is stable and
    machine-readable; some problems carry more members (e.g. ``errors``, ``dependents``, ``missing``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI naming the problem type: https://credflow.dev/problems/{code}")
    title: str
    status: int = Field(description="the HTTP status code")
    detail: str
    code: str = Field(description="stable machine-readable code, e.g. in_use, missing_dependencies")
    errors: list[FieldProblem] | None = Field(None, description="for invalid requests: each field at fault")
