"""Errors of the f5serve client: one class per HTTP status of the API's error envelope."""

from __future__ import annotations

import json
from typing import Any

import httpx


class F5ServeClientError(Exception):
    """Anything the client raises (a connection problem arrives as httpx's own error)."""


class APIError(F5ServeClientError):
    """The server answered with an error: the envelope's ``code``, ``message`` and
    ``details``, the HTTP ``status`` and, on 429 and 503, ``retry_after`` (seconds)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after


class BadRequestError(APIError):
    """400: the body is not valid JSON, not a JSON object, or not valid multipart."""


class AuthenticationError(APIError):
    """401: missing or wrong API key."""


class PermissionDeniedError(APIError):
    """403: the key may not do this (change a shared voice, read the metrics: admin keys)."""


class NotFoundError(APIError):
    """404: unknown job, voice, model or route (or another key's job or voice)."""


class ConflictError(APIError):
    """409: job id reused with another body, voice name taken, audio of an unfinished job."""


class GoneError(APIError):
    """410: the job's audio expired."""


class PayloadTooLargeError(APIError):
    """413: text, upload or body over its limit."""


class UnsupportedMediaTypeError(APIError):
    """415: an upload that is not audio."""


class InvalidRequestError(APIError):
    """422: invalid field values, unusable audio, no voice given."""


class RateLimitError(APIError):
    """429: the job queue is full, or the key is over its requests per minute or audio
    seconds per day (see ``retry_after``)."""


class ServiceUnavailableError(APIError):
    """503: busy, or storage, device or model unavailable (see ``retry_after``)."""


class GatewayTimeoutError(APIError):
    """504: a synchronous request ran over the server's time limit."""


class JobFailedError(F5ServeClientError):
    """A job that was waited for ended without audio (failed, cancelled or expired)."""

    def __init__(self, job: Any) -> None:
        error = job.error or {}
        super().__init__(
            f"job {job.job_id} {job.status}: {error.get('code', '')} {error.get('message', '')}"
        )
        self.job = job


class StreamError(F5ServeClientError):
    """A server-sent event stream ended with an ``error`` event (after it started)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def raise_for_status(response: httpx.Response) -> None:
    """Raise the :class:`APIError` of an error response (its body must have been read)."""
    if response.is_success:
        return
    try:
        error = json.loads(response.content)["error"]
        code, message, details = error["code"], error["message"], error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "http_error", response.text[:500] or response.reason_phrase, None
    retry = response.headers.get("Retry-After")
    kind = BY_STATUS.get(response.status_code, APIError)
    raise kind(
        response.status_code,
        code,
        message,
        details,
        float(retry) if retry and retry.isdigit() else None,
    )
