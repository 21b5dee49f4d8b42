"""Every error leaves as RFC 9457 problem details with a stable ``code``; no error echoes an input value."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from credflow.domain.errors import DomainError

log = logging.getLogger("credflow.api")
PROBLEM = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://credflow.dev/problems/{code}", "status": status, "title": title,
            "detail": detail, "code": code, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
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
