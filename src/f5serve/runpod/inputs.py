"""What a RunPod job's ``input`` may hold, per endpoint, and how errors are reported.

The request shapes follow the RunPod handlers f5serve replaces (``{"input": {"text", "ref_name":
"sample/narrator.wav", "speed", "job_id"}}``, ``endpoint: "download"``); the TTS fields are the
service's own :class:`~f5serve.core.params.SpeechParams`, so HTTP and RunPod accept the same
values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from f5serve.core.formats import FormatName
from f5serve.core.params import JOB_ID_PATTERN, SpeechParams
from f5serve.core.storage.base import StorageError
from f5serve.errors import (
    AmbiguousVoice,
    F5ServeError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Timeout,
)

ENDPOINTS = ("tts", "download", "health", "voices")
Return = Literal["base64", "url", "both"]


class TTSInput(SpeechParams):
    """``endpoint: "tts"`` (the default): synthesise, store ``output/<job_id>.wav``, answer."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: Literal["tts"] = "tts"
    ref_audio_base64: str | None = Field(
        default=None, description="Reference clip, base64 (same as ref_audio)."
    )
    job_id: str | None = Field(
        default=None, pattern=JOB_ID_PATTERN, description="Your id (default: a new uuid)."
    )
    response_format: FormatName = Field(default="wav", description="Format of audio_base64.")
    return_: Return = Field(
        default="base64",
        alias="return",
        description="base64: audio in the answer; url: a presigned URL (S3); both.",
    )

    def speech_request_body(self) -> dict[str, Any]:
        """The body :func:`~f5serve.core.synthesis.speech_request_from_dict` reads."""
        if self.ref_audio is not None and self.ref_audio_base64 is not None:
            raise InvalidInput("give ref_audio_base64 or ref_audio, not both")
        body = self.speech_body()
        if self.ref_audio_base64 is not None:
            body["ref_audio"] = self.ref_audio_base64
        return body


class DownloadInput(BaseModel):
    """``endpoint: "download"``: the stored audio of an earlier job, base64."""

    model_config = ConfigDict(extra="forbid")

    endpoint: Literal["download"]
    job_id: str = Field(pattern=JOB_ID_PATTERN)
    response_format: FormatName = "wav"


class InfoInput(BaseModel):
    """``endpoint: "health"`` or ``"voices"`` (no other fields)."""

    model_config = ConfigDict(extra="forbid")

    endpoint: Literal["health", "voices"]


# ---------------------------------------------------------------------------------------- errors

VOICE_DETAILS = ("voice", "ref_name")


def error_code(exc: F5ServeError) -> str:
    """The RunPod error code of one of our errors."""
    if (
        isinstance(exc, (InvalidInput, PayloadTooLarge, AmbiguousVoice))
        or exc.code == "bad_request"
    ):
        return "invalid_input"
    if isinstance(exc, NotFound):
        is_voice = any(k in exc.details for k in VOICE_DETAILS)
        return "voice_not_found" if is_voice else "not_found"
    if isinstance(exc, Timeout):
        return "timeout"
    if isinstance(exc, StorageError):
        return "storage_error"
    if exc.code == "expired":
        return "not_found"
    return "tts_failed"  # model, device, download, overload and other synthesis failures


def error_output(exc: F5ServeError) -> dict[str, Any]:
    """``{"error": code, "message": ...}`` (plus ``detail``, our finer code, when it differs)."""
    code = error_code(exc)
    out: dict[str, Any] = {"error": code, "message": exc.message}
    if exc.code != code:
        out["detail"] = exc.code
    return out
