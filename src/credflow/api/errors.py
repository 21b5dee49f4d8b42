"""Every error leaves as RFC 9457 problem details with a stable ``code``; no error echoes an input value.

``problem_responses(...)`` documents those answers on a route or router (``responses=``): each status it names
is ``application/problem+json`` with the ``Problem`` schema, and ``install`` adds that schema to /openapi.json.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from credflow.api.models import Problem
from credflow.domain.errors import DomainError

log = logging.getLogger("credflow.api")
PROBLEM = "application/problem+json"
PROBLEM_SCHEMA = "#/components/schemas/Problem"

# What each status means in this API (API.md, Conventions).
STATUS_MEANINGS = {
    400: "Malformed: the body is not JSON or not a JSON object, or a cursor or upload this operation cannot read",
    401: "No token, or a token that is not valid (revoked, expired, unknown)",
    403: "Authenticated, but not allowed",
    404: "Not found, or not visible to the caller",
    409: "Conflict: the name is taken, or the object is in use",
    413: "Too large: the body is larger than this operation takes (body_too_large), or a part of it is",
    422: "Valid JSON that breaks a rule, or a parameter or body that does not match its schema",
    429: "Too many requests (too_many_failed_sign_ins: from this address); try again after Retry-After seconds",
    500: "An unexpected error (no detail is given)",
    503: "A vault, the database or another service this operation needs is unavailable; try again later",
    507: "The database's storage is full: nothing was written; try again once space is freed",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: each status answered as problem details."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"description": STATUS_MEANINGS[status],
                                 "content": {PROBLEM: {"schema": {"$ref": PROBLEM_SCHEMA}}}}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
        if status == 429:
            entry["headers"] = {"Retry-After": {"description": "seconds to wait before trying again",
                                                "required": True, "schema": {"type": "integer"}}}
        out[status] = entry
    return out


def _document_limits(spec: dict[str, Any]) -> None:
    """The answers every operation may give besides its own: 413 where it takes a body (credflow.api.limits
    counts every body), 429 where it checks a credential (credflow.services.access.failed_auth)."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "requestBody" in operation:
                responses.setdefault("413", problem_responses(413)[413])
            if "401" in responses:
                responses.setdefault("429", problem_responses(429)[429])


def _document_problems(app: FastAPI) -> None:
    """Put the ``Problem`` schema (which the ``responses`` above refer to) among the OpenAPI components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()  # which FastAPI keeps as app.openapi_schema
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem_schema.pop("$defs", {}))
        schemas["Problem"] = problem_schema
        _document_limits(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://credflow.dev/problems/{code}", "status": status, "title": title,
            "detail": detail, "code": code, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 429 and "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(400, "malformed_json", "Malformed request", "the body is not valid JSON")
        if any(e.get("type") == "model_attributes_type" or e.get("loc") == ("body",) for e in errors):
            return problem(400, "malformed", "Malformed request", "the body must be a JSON object")
        fields = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "problem": e["msg"]} for e in errors]
        unknown = [f["field"] for f, e in zip(fields, errors, strict=True) if e.get("type") == "extra_forbidden"]
        if unknown:
            return problem(422, "unknown_field", "Unknown field", f"unknown field(s): {', '.join(unknown)}",
                           errors=fields)
        return problem(422, "invalid_request", "Invalid request", "the request does not match the schema",
                       errors=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return problem(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                       str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(exc).__name__)  # never the message: it may carry a value
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred")
