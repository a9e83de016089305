"""The synchronous f5serve client (httpx)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
from typing_extensions import Unpack

from f5serve.client import calls
from f5serve.client.errors import raise_for_status
from f5serve.client.types import (
    AudioInput,
    Job,
    JobList,
    KeyUsage,
    Model,
    Segment,
    Speech,
    SpeechFields,
    Voice,
)

T = TypeVar("T")


class Client:
    """f5serve's HTTP API from Python: ``Client("http://127.0.0.1:8000", api_key=...)``.

    Errors raise :class:`~f5serve.client.errors.APIError` subclasses carrying the server's
    ``code``, ``message``, ``status`` and ``retry_after``. Use it as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = http or httpx.Client(
            base_url=base_url, headers=calls.headers(api_key), timeout=timeout
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: calls.Call[T]) -> T:
        response = self._http.request(**call.send_args())
        raise_for_status(response)
        return call.parse(response)

    def _stream(self, call: calls.Call[Any]) -> Iterator[httpx.Response]:
        with self._http.stream(**call.send_args()) as response:
            if not response.is_success:
                response.read()
                raise_for_status(response)
            yield response

    # ------------------------------------------------------------------ speech

    def speech(
        self, text: str, *, response_format: str = "wav", **fields: Unpack[SpeechFields]
    ) -> bytes:
        """``POST /v1/tts``: the audio of ``text`` in ``response_format``."""
        return self._run(calls.tts(calls.speech_body(text, fields), response_format))

    def speech_info(
        self, text: str, *, audio_format: str = "wav", **fields: Unpack[SpeechFields]
    ) -> Speech:
        """``POST /v1/tts`` as JSON: the audio with its model, language, voice, seed, ..."""
        return self._run(calls.tts_json(calls.speech_body(text, fields), audio_format))

    def stream_speech(
        self, text: str, *, response_format: str = "pcm", **fields: Unpack[SpeechFields]
    ) -> Iterator[bytes]:
        """``POST /v1/tts`` with ``stream``: the bytes of one file as the chunks finish."""
        call = calls.tts_stream(calls.speech_body(text, fields), response_format, sse=False)
        for response in self._stream(call):
            yield from response.iter_bytes()

    def stream_segments(
        self, text: str, *, response_format: str = "pcm", **fields: Unpack[SpeechFields]
    ) -> Iterator[Segment | bytes]:
        """``POST /v1/tts`` as server-sent events: each chunk's :class:`Segment` (its text and
        times), then its audio bytes; the bytes concatenate to one file."""
        call = calls.tts_stream(calls.speech_body(text, fields), response_format, sse=True)
        for response in self._stream(call):
            for line in response.iter_lines():
                event = calls.decode_event(line)
                if event is not None:
                    yield event

    def openai_speech(
        self,
        text: str,
        voice: str,
        *,
        model: str = "tts-1",
        response_format: str = "mp3",
        speed: float = 1.0,
    ) -> bytes:
        """``POST /v1/audio/speech`` (OpenAI's API): the audio."""
        return self._run(calls.openai_speech(text, voice, model, response_format, speed))

    def stream_openai_speech(
        self,
        text: str,
        voice: str,
        *,
        model: str = "tts-1",
        response_format: str = "mp3",
        speed: float = 1.0,
    ) -> Iterator[bytes]:
        """``POST /v1/audio/speech``: the audio bytes as the chunks finish."""
        call = calls.openai_speech(text, voice, model, response_format, speed)
        for response in self._stream(call):
            yield from response.iter_bytes()

    # ------------------------------------------------------------------ jobs

    def submit_job(
        self, text: str, *, job_id: str | None = None, **fields: Unpack[SpeechFields]
    ) -> Job:
        """``POST /v1/jobs``: store ``text`` for synthesis in the background."""
        submitted = self._run(calls.submit_job(calls.speech_body(text, fields), job_id))
        return self.get_job(submitted)

    def get_job(self, job_id: str) -> Job:
        return self._run(calls.get_job(job_id))

    def cancel_job(self, job_id: str) -> Job:
        return self._run(calls.cancel_job(job_id))

    def list_jobs(self, status: str | None = None, limit: int = 50, offset: int = 0) -> JobList:
        return self._run(calls.list_jobs(status, limit, offset))

    def download_job(self, job_id: str, format: str = "wav") -> bytes:
        """The audio of a succeeded job, in any format."""
        return self._run(calls.job_audio(job_id, format))

    def wait_for_job(
        self,
        job_id: str,
        *,
        progress: Callable[[Job], None] | None = None,
        poll_interval: float = 0.5,
        timeout: float | None = None,
    ) -> Job:
        """Poll until the job finishes; ``progress(job)`` after each poll. Returns the
        succeeded job; raises :class:`JobFailedError` (failed, cancelled, expired) or
        :class:`TimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if progress is not None:
                progress(job)
            if job.finished:
                return calls.succeeded(job)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
            time.sleep(poll_interval)

    # ------------------------------------------------------------------ voices

    def upload_voice(
        self, name: str, audio: AudioInput, ref_text: str | None = None, language: str | None = None
    ) -> Voice:
        """``POST /v1/voices``: add a clip (bytes or a path) and its transcript (left out:
        heard by the server's speech recognition; given: ``warnings`` when it disagrees)."""
        return self._run(calls.create_voice(name, audio, ref_text, language))

    def list_voices(self) -> list[Voice]:
        return self._run(calls.list_voices())

    def get_voice(self, voice: str) -> Voice:
        """A voice by id or name."""
        return self._run(calls.get_voice(voice))

    def update_voice(
        self,
        voice: str,
        *,
        name: str | None = None,
        ref_text: str | None = None,
        language: str | None = None,
    ) -> Voice:
        changes = {"name": name, "ref_text": ref_text, "language": language}
        return self._run(calls.update_voice(voice, changes))

    def delete_voice(self, voice: str) -> None:
        self._run(calls.delete_voice(voice))

    def voice_audio(self, voice: str) -> bytes:
        """The cleaned reference clip of a voice (WAV)."""
        return self._run(calls.voice_audio(voice))

    # ------------------------------------------------------------------ system

    def models(self) -> list[Model]:
        return self._run(calls.models())

    def usage(self) -> list[KeyUsage]:
        """Today's usage and limits of this client's key (every key's for an admin key)."""
        return self._run(calls.usage())

    def health(self) -> dict[str, Any]:
        return self._run(calls.health())

    def ready(self) -> dict[str, Any]:
        """``GET /ready`` (a server that is not ready raises ServiceUnavailableError)."""
        return self._run(calls.ready())
