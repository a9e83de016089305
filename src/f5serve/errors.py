"""One exception hierarchy for the whole project.

Every error a user can cause is a subclass of :class:`F5ServeError` with a stable machine-readable
``code`` and the HTTP status the service layer maps it to. Messages are written for the person
who made the request: they say what was wrong and, where possible, how to fix it.
"""

from __future__ import annotations

from typing import Any


class F5ServeError(Exception):
    """Base class of every error f5serve raises on purpose."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON error envelope body: ``{"code", "message", "details"?}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(F5ServeError):
    """The request itself is wrong (bad text, bad parameter value)."""

    code = "invalid_input"
    http_status = 422


class InvalidText(InvalidInput):
    """Text that cannot be synthesised: empty, or nothing but punctuation and spaces."""

    code = "invalid_text"


class InvalidAudio(InvalidInput):
    """Reference audio that cannot be used: not audio, corrupt, silent or too short."""

    code = "invalid_audio"


class UnsupportedMediaType(InvalidAudio):
    """A file that is not audio in any format we can decode."""

    code = "unsupported_media_type"
    http_status = 415


class NotFound(F5ServeError):
    """A named thing (file, model, voice, job) does not exist."""

    code = "not_found"
    http_status = 404


class ModelError(F5ServeError):
    """Model files that cannot be used together: bad checkpoint, vocab mismatch, bad config."""

    code = "model_error"
    http_status = 500


class CheckpointMismatch(ModelError):
    """A checkpoint whose tensors do not fit the architecture they are loaded into."""

    code = "checkpoint_mismatch"


class UnknownPreset(ModelError):
    """An architecture preset name that does not exist."""

    code = "unknown_preset"
    http_status = 422


class DeviceError(ModelError):
    """A device/dtype combination that is not available or not supported."""

    code = "device_unavailable"
    http_status = 503


class ConfigError(F5ServeError):
    """A configuration file or setting that cannot be used (names the file, entry and field)."""

    code = "invalid_config"
    http_status = 500


class AsrUnavailable(InvalidInput):
    """Speech recognition asked for where the optional extra ``f5serve[asr]`` is not
    installed."""

    code = "asr_unavailable"


class UnsupportedLanguage(InvalidInput):
    """A language that no model in the catalogue speaks."""

    code = "unsupported_language"


class ModelUnavailable(F5ServeError):
    """A known model whose files cannot be had now (offline and not cached, hub unreachable)."""

    code = "model_unavailable"
    http_status = 503


class DownloadError(ModelUnavailable):
    """A download that failed (network, hub error, missing file in the repository)."""

    code = "download_failed"
    http_status = 502


class IntegrityError(DownloadError):
    """A downloaded or cached file whose bytes do not match the hash the hub advertises."""

    code = "integrity_error"


class ModelAccessDenied(DownloadError):
    """A gated or private repository this server has no access to (terms not accepted on the
    hub, or no ``HF_TOKEN`` of an account that has access)."""

    code = "model_access_denied"


class Overloaded(F5ServeError):
    """The backlog is full: try again after ``retry_after`` seconds."""

    code = "overloaded"
    http_status = 503

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class BadRequest(F5ServeError):
    """A request that cannot be parsed at all (malformed JSON, a body of the wrong type)."""

    code = "bad_request"
    http_status = 400


class Unauthorized(F5ServeError):
    """A missing or wrong API key."""

    code = "unauthorized"
    http_status = 401


class Forbidden(F5ServeError):
    """A valid API key that may not do this (change a shared library voice, read the metrics
    of every key without being an admin)."""

    code = "forbidden"
    http_status = 403


class Conflict(F5ServeError):
    """A request that clashes with the current state (a job id reused with another body, a
    voice name already taken)."""

    code = "conflict"
    http_status = 409


class Expired(F5ServeError):
    """Something that existed but whose retention time is over (a job's output)."""

    code = "expired"
    http_status = 410


class PayloadTooLarge(F5ServeError):
    """A request body, upload or text over its configured limit."""

    code = "payload_too_large"
    http_status = 413


class TooManyRequests(F5ServeError):
    """The job queue holds as many jobs as it may, or an API key used up its requests per
    minute or audio seconds per day: try again after ``retry_after`` seconds."""

    code = "too_many_requests"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class Timeout(F5ServeError):
    """A synthesis that took longer than its configured time limit."""

    code = "timeout"
    http_status = 504
