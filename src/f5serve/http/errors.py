"""The one place that turns errors into HTTP: ``{"error": {"code", "message", "details"?}}``.

Our own errors carry their status; validation errors are 422 (400 when the body is not even
JSON); anything else is a bug: 500 with a generic message, the traceback only in the log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from f5serve.core.params import validation_error
from f5serve.errors import F5ServeError, Overloaded, TooManyRequests

log = logging.getLogger(__name__)

# Seconds a client should wait after a 503 that has no estimate of its own (a model that cannot
# be loaded or downloaded right now, storage or a device that failed): never a bare 503.
UNAVAILABLE_RETRY_AFTER = 30

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def envelope(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error body; a 500 also says ``Connection: close``, since the server drops the
    connection after an unexpected error and a keep-alive client must not reuse it."""
    if status == 500:
        headers = {**(headers or {}), "Connection": "close"}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def error_response(exc: F5ServeError) -> JSONResponse:
    """The response of one of our errors, with ``Retry-After`` on every 429 and 503."""
    headers = {}
    if isinstance(exc, (Overloaded, TooManyRequests)):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    elif exc.http_status == 503:
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return envelope(exc.http_status, exc.to_dict(), headers)


async def _on_f5serve(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, F5ServeError)
    if exc.http_status >= 500 and not isinstance(exc, Overloaded):
        log.error("%s %s failed: %s: %s", request.method, request.url.path, exc.code, exc.message)
    return error_response(exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, (RequestValidationError, ValidationError))
    return error_response(validation_error(list(exc.errors())))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (methods := allowed_methods(request)):
        headers["Allow"] = ", ".join(methods)
    return envelope(exc.status_code, {"code": code, "message": message}, headers)


def allowed_methods(request: Request) -> list[str]:
    """Every documented method of the request's path: where a path has several routes (GET and
    POST /v1/jobs), the router's 405 names only those of the first one."""
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    return sorted(
        method.upper()
        for template, operations in paths.items()
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), request.url.path)
        for method in operations
    )


async def _on_bug(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return envelope(
        500, {"code": "internal_error", "message": "internal server error (see the server log)"}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations on ``app``."""
    app.add_exception_handler(F5ServeError, _on_f5serve)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_bug)
