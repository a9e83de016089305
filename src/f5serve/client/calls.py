"""The requests of the API and how to read their answers, shared by :class:`Client` and
:class:`AsyncClient` (which only send them)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from f5serve.client.errors import JobFailedError, StreamError
from f5serve.client.types import (
    AudioInput,
    Job,
    JobList,
    KeyUsage,
    Model,
    Segment,
    Speech,
    SpeechFields,
    TimedText,
    Voice,
    parse_job,
    parse_model,
    parse_usage,
    parse_voice,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: what to send and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = field(default=None)

    def send_args(self) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request`` / ``stream``."""
        args = {"json": self.json, "params": self.params, "data": self.data, "files": self.files}
        return {"method": self.method, "url": self.path} | {
            k: v for k, v in args.items() if v is not None
        }


def read_audio(audio: AudioInput) -> bytes:
    return audio if isinstance(audio, bytes) else Path(audio).read_bytes()


def speech_body(text: str, fields: SpeechFields) -> dict[str, Any]:
    """The body of ``/v1/tts`` and ``/v1/jobs``: ``ref_audio`` (bytes or a path) in base64."""
    body: dict[str, Any] = {"text": text, **fields}
    if body.get("ref_audio") is not None:
        body["ref_audio"] = base64.b64encode(read_audio(body["ref_audio"])).decode()
    return {k: v for k, v in body.items() if v is not None or k == "sway_sampling_coef"}


def content(response: httpx.Response) -> bytes:
    return response.content


def tts(body: dict[str, Any], response_format: str) -> Call[bytes]:
    return Call("POST", "/v1/tts", content, json={**body, "response_format": response_format})


def tts_json(body: dict[str, Any], audio_format: str) -> Call[Speech]:
    def parse(response: httpx.Response) -> Speech:
        data = response.json()
        audio = base64.b64decode(data.pop("audio_base64"))
        data["segments"] = [TimedText(**segment) for segment in data.get("segments", [])]
        return Speech(audio=audio, **{k: v for k, v in data.items() if k in Speech.__annotations__})

    body = {**body, "response_format": "json", "audio_format": audio_format}
    return Call("POST", "/v1/tts", parse, json=body)


def tts_stream(body: dict[str, Any], response_format: str, sse: bool) -> Call[None]:
    fields = {"response_format": response_format, "stream": True}
    if sse:
        fields["stream_format"] = "sse"
    return Call("POST", "/v1/tts", _nothing, json={**body, **fields})


def openai_speech(
    text: str, voice: str, model: str, response_format: str, speed: float, sse: bool = False
) -> Call[bytes]:
    body: dict[str, Any] = {"model": model, "input": text, "voice": voice}
    body |= {"response_format": response_format, "speed": speed}
    if sse:
        body["stream_format"] = "sse"
    return Call("POST", "/v1/audio/speech", content, json=body)


def decode_event(line: str) -> Segment | bytes | None:
    """One line of a speech SSE stream: a :class:`Segment`, audio bytes, or None (other lines,
    the ``done`` event). An ``error`` event raises :class:`StreamError`."""
    if not line.startswith("data: "):
        return None
    event = json.loads(line[6:])
    kind = event.get("type")
    if kind == "speech.audio.delta":
        return base64.b64decode(event["audio"])
    if kind == "speech.segment":
        times = (event["start"], event["end"], event.get("attempts", []))
        return Segment(event["index"], event["text"], *times)
    if kind == "error":
        raise StreamError(event["error"]["code"], event["error"]["message"])
    return None


def submit_job(body: dict[str, Any], job_id: str | None) -> Call[str]:
    """``POST /v1/jobs``; its answer is the job's id (the clients then read the whole job)."""
    if job_id is not None:
        body = {**body, "job_id": job_id}
    return Call("POST", "/v1/jobs", lambda r: str(r.json()["job_id"]), json=body)


def get_job(job_id: str) -> Call[Job]:
    return Call("GET", f"/v1/jobs/{job_id}", _job)


def cancel_job(job_id: str) -> Call[Job]:
    return Call("DELETE", f"/v1/jobs/{job_id}", _job)


def list_jobs(status: str | None, limit: int, offset: int) -> Call[JobList]:
    def parse(response: httpx.Response) -> JobList:
        data = response.json()
        jobs = [parse_job(j) for j in data["jobs"]]
        return JobList(jobs, data["total"], data["limit"], data["offset"])

    params = {"limit": limit, "offset": offset} | ({"status": status} if status else {})
    return Call("GET", "/v1/jobs", parse, params=params)


def job_audio(job_id: str, fmt: str) -> Call[bytes]:
    return Call("GET", f"/v1/jobs/{job_id}/audio", content, params={"format": fmt})


def create_voice(
    name: str, audio: AudioInput, ref_text: str | None, language: str | None
) -> Call[Voice]:
    given = {"ref_text": ref_text, "language": language}
    fields = {"name": name} | {k: v for k, v in given.items() if v}
    files = {"audio": ("clip", read_audio(audio), "application/octet-stream")}
    return Call("POST", "/v1/voices", _voice, data=fields, files=files)


def list_voices() -> Call[list[Voice]]:
    return Call("GET", "/v1/voices", lambda r: [parse_voice(v) for v in r.json()["voices"]])


def get_voice(voice: str) -> Call[Voice]:
    return Call("GET", f"/v1/voices/{voice}", _voice)


def update_voice(voice: str, changes: dict[str, str | None]) -> Call[Voice]:
    body = {k: v for k, v in changes.items() if v is not None}
    return Call("PATCH", f"/v1/voices/{voice}", _voice, json=body)


def delete_voice(voice: str) -> Call[None]:
    return Call("DELETE", f"/v1/voices/{voice}", _nothing)


def voice_audio(voice: str) -> Call[bytes]:
    return Call("GET", f"/v1/voices/{voice}/audio", content)


def models() -> Call[list[Model]]:
    return Call("GET", "/v1/models", lambda r: [parse_model(m) for m in r.json()["data"]])


def usage() -> Call[list[KeyUsage]]:
    return Call("GET", "/v1/usage", lambda r: [parse_usage(u) for u in r.json()["keys"]])


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/health", _json)


def ready() -> Call[dict[str, Any]]:
    return Call("GET", "/ready", _json)


def _job(response: httpx.Response) -> Job:
    return parse_job(response.json())


def _voice(response: httpx.Response) -> Voice:
    return parse_voice(response.json())


def _json(response: httpx.Response) -> dict[str, Any]:
    data: dict[str, Any] = response.json()
    return data


def _nothing(response: httpx.Response) -> None:
    return None


def succeeded(job: Job) -> Job:
    """``job`` if it succeeded; else :class:`JobFailedError`."""
    if job.status != "succeeded":
        raise JobFailedError(job)
    return job


def headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
