"""What the f5serve client returns (plain dataclasses, built from the API's JSON)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from typing_extensions import TypedDict

T = TypeVar("T")


class SpeechOptions(TypedDict, total=False):
    """The synthesis options of ``POST /v1/tts`` (left out: the server's defaults)."""

    speed: float
    nfe_steps: int
    cfg_strength: float
    sway_sampling_coef: float | None
    seed: int
    cross_fade: float
    fix_duration: float | None
    target_rms: float
    preprocess_ref: bool
    normalize: bool
    speaker_pause: float
    quality_check: bool  # transcribe each chunk, try the next seed while it reads badly
    max_tries: int
    cer_threshold: float


AudioInput = bytes | str | Path  # the bytes of a clip, or a path to one


class SpeechFields(SpeechOptions, total=False):
    """Who speaks (one of ``voice``, ``ref_name``, ``ref_audio`` with ``ref_text``), with which
    model, and the synthesis options."""

    script: bool  # the text is a multi-speaker script: "[narrator] ... [alice] ..."
    pronunciations: dict[str, str]  # {word or /pattern/: replacement} for this request
    voice: str
    ref_name: str
    ref_audio: AudioInput
    ref_text: str
    language: str
    model: str
    remove_silence: bool  # not with streams


@dataclass(frozen=True)
class TimedText:
    """When a chunk of the text is spoken in the audio (seconds); with ``quality_check``,
    each try of the chunk, ``{"seed", "cer", "heard"}``."""

    text: str
    start: float
    end: float
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Speech:
    """``POST /v1/tts`` with ``response_format: "json"``: the audio and what made it."""

    audio: bytes
    content_type: str
    sample_rate: int
    duration: float
    processing_time_seconds: float
    model: str
    language: str | None
    voice: str | None
    seed: int
    job_id: str
    segments: list[TimedText] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Segment:
    """One chunk of the text in a streamed response: where it lies in the audio (seconds)."""

    index: int
    text: str
    start: float
    end: float
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # quality_check


@dataclass(frozen=True)
class JobProgress:
    fraction: float
    chunk: int
    chunks: int
    step: int
    steps: int


@dataclass(frozen=True)
class Job:
    """A job as ``GET /v1/jobs/{id}`` shows it."""

    job_id: str
    status: str  # queued, running, succeeded, failed, cancelled, expired
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    links: dict[str, str]

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled", "expired")


@dataclass(frozen=True)
class JobList:
    jobs: list[Job]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    ref_text: str
    language: str | None
    source: str  # upload or directory
    duration: float
    created_at: datetime
    updated_at: datetime
    links: dict[str, str]
    pronunciations: dict[str, str] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)  # ref_text vs the clip


@dataclass(frozen=True)
class Model:
    id: str
    languages: list[str]
    default: bool
    loaded: bool
    device: str | None
    bytes: int | None
    licence: str | None
    description: str | None


@dataclass(frozen=True)
class KeyUsage:
    """What one API key used today (UTC) and its limits (None: no limit)."""

    key_id: str
    name: str
    admin: bool
    revoked: bool
    day: date
    requests: int
    audio_seconds: float
    requests_per_minute: int | None
    audio_seconds_per_day: float | None


def parse_usage(data: dict[str, Any]) -> KeyUsage:
    fields = _known(KeyUsage, data)
    fields["day"] = date.fromisoformat(data["day"])
    return KeyUsage(**fields)


def parse_job(data: dict[str, Any]) -> Job:
    fields = _known(Job, data)
    fields["progress"] = JobProgress(**data["progress"])
    for name in ("created_at", "started_at", "finished_at"):
        fields[name] = _time(data.get(name))
    return Job(**fields)


def parse_voice(data: dict[str, Any]) -> Voice:
    fields = _known(Voice, data)
    fields["created_at"] = _time(data["created_at"])
    fields["updated_at"] = _time(data["updated_at"])
    return Voice(**fields)


def parse_model(data: dict[str, Any]) -> Model:
    return Model(**_known(Model, data))


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` in ``data`` (fields a newer server adds are ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _time(value: str | None) -> Any:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))
