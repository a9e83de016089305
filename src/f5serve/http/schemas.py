"""Request and response bodies of the API (pydantic models; they are the OpenAPI schema).

The speech fields shared with RunPod and stored jobs are :mod:`f5serve.core.params`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from f5serve.core.formats import FormatName
from f5serve.core.params import JOB_ID_PATTERN, SpeechParams

OWNER = (
    "The id of the API key that made it: shown to admin keys only (null for other keys, and "
    "for what has no owner)."
)


class TTSRequest(SpeechParams):
    """POST /v1/tts."""

    response_format: FormatName | Literal["json"] = Field(
        default="wav",
        description="Audio format of the body, or 'json' for a JSON body with base64.",
    )
    audio_format: FormatName = Field(
        default="wav", description="Audio format inside a JSON response."
    )
    stream: bool = Field(
        default=False,
        description="Send the audio as the chunks of the text finish (formats that cannot "
        "stream, flac and m4a, are sent whole).",
    )
    stream_format: Literal["audio", "sse"] = Field(
        default="audio",
        description="'sse': server-sent events (speech.segment, speech.audio.delta, "
        "speech.audio.done) instead of the audio bytes; implies stream.",
    )


class ChunkAttempt(BaseModel):
    """One try of a chunk under quality_check."""

    seed: int
    cer: float = Field(description="Character error rate of what was heard against the text.")
    heard: str = Field(description="What speech recognition heard.")


class WordTime(BaseModel):
    """One word of the text as written, with when speech recognition heard it (seconds)."""

    word: str
    start: float | None = Field(description="None: the word was not heard (never estimated).")
    end: float | None


class SegmentTime(BaseModel):
    """When one chunk of the text is spoken in the audio (seconds)."""

    text: str = Field(description="The chunk's text, after pronunciation and normalisation.")
    start: float
    end: float
    attempts: list[ChunkAttempt] = Field(
        default_factory=list,
        description="With quality_check: each try of the chunk, in order (the audio kept is "
        "the one with the lowest cer); empty otherwise.",
    )
    words: list[WordTime] = Field(
        default_factory=list,
        description="With word_timestamps: the chunk's words as written (before pronunciation "
        "and normalisation) with when they were heard; empty otherwise.",
    )


class TTSResponse(BaseModel):
    """POST /v1/tts with response_format 'json'."""

    job_id: str
    audio_base64: str
    content_type: str
    sample_rate: int
    duration: float
    processing_time_seconds: float
    model: str
    language: str | None
    voice: str | None
    seed: int
    segments: list[SegmentTime] = Field(
        description="When each chunk is spoken (empty with remove_silence)."
    )


class JobRequest(SpeechParams):
    """POST /v1/jobs."""

    job_id: str | None = Field(
        default=None,
        pattern=JOB_ID_PATTERN,
        description="Your own id (idempotent: the same id and body again returns the first job).",
    )


JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]


class JobSubmitted(BaseModel):
    """POST /v1/jobs: 202 for a new job, 200 when a job of this id and body already exists."""

    job_id: str
    status: JobState
    links: dict[str, str]


class JobProgress(BaseModel):
    fraction: float = Field(description="0-1 over all chunks and steps.")
    chunk: int = Field(description="0-based chunk that advanced last.")
    chunks: int
    step: int
    steps: int


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def error_responses(
    *statuses: int, descriptions: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route's error statuses: each is the JSON error envelope
    (with its description where given), and 429 and 503 always say ``Retry-After``. A route whose
    own answer is not JSON must have a ``response_class`` without a media type (``Response``):
    FastAPI documents these models in the route's media type."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {"model": ErrorEnvelope}
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        if descriptions and status in descriptions:
            response["description"] = descriptions[status]
        responses[status] = response
    return responses


class JobStatus(BaseModel):
    """A job as GET /v1/jobs/{id} shows it."""

    job_id: str
    status: JobState
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None
    links: dict[str, str]
    owner: str | None = Field(default=None, description=OWNER)


class JobList(BaseModel):
    jobs: list[JobStatus]
    total: int
    limit: int
    offset: int


class Voice(BaseModel):
    id: str
    name: str
    ref_text: str
    language: str | None
    source: Literal["upload", "directory"]
    duration: float = Field(description="Seconds of the cleaned reference clip.")
    created_at: datetime
    updated_at: datetime
    pronunciations: dict[str, str] = Field(
        description="{word or /pattern/: replacement} applied to text spoken in this voice."
    )
    links: dict[str, str]
    warnings: list[str] = Field(
        default_factory=list,
        description="On upload or a new ref_text: where ref_text disagrees with what speech "
        "recognition hears in the clip (f5serve[asr]).",
    )
    owner: str | None = Field(default=None, description=OWNER)


class VoiceList(BaseModel):
    voices: list[Voice]


class VoicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    ref_text: str | None = None
    language: str | None = None
    pronunciations: dict[str, str] | None = Field(
        default=None, description="The voice's whole dictionary ({} clears it)."
    )


class OpenAISpeechRequest(BaseModel):
    """POST /v1/audio/speech (OpenAI's body; unknown fields such as 'instructions' are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="'tts-1', 'tts-1-hd', 'gpt-4o-mini-tts' or a model name.")
    input: str = Field(min_length=1, description="Text to speak.")
    voice: str = Field(description="Voice id or name from /v1/voices.")
    response_format: FormatName = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


class Readiness(BaseModel):
    """GET /ready: 200 when every check is 'ok', else 503."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="database, storage, model: 'ok' or the problem.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "f5serve"
    languages: list[str]
    default: bool
    loaded: bool
    device: str | None = Field(
        default=None, description="Where the model is loaded ('cpu', 'cuda:0'); null if not."
    )
    bytes: int | None = Field(
        default=None, description="Its parameters and buffers on that device; null if not loaded."
    )
    licence: str | None
    description: str | None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class KeyUsage(BaseModel):
    """What one API key used today (UTC) and its limits."""

    key_id: str
    name: str
    admin: bool
    revoked: bool
    day: date = Field(description="The UTC day counted.")
    requests: int = Field(description="Requests accepted today.")
    audio_seconds: float = Field(description="Seconds of audio made today.")
    requests_per_minute: int | None = Field(description="Its limit (null: none).")
    audio_seconds_per_day: float | None = Field(description="Its limit (null: none).")


class UsageList(BaseModel):
    """GET /v1/usage: the caller's key; every key for an admin key (none on an open server)."""

    keys: list[KeyUsage]
