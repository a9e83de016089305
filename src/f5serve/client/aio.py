"""The asynchronous f5serve client (httpx), the twin of :class:`f5serve.client.Client`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
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


class AsyncClient:
    """:class:`~f5serve.client.Client` with ``await``: every method is a coroutine, and the
    streaming ones are asynchronous iterators (``async for``)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http or httpx.AsyncClient(
            base_url=base_url, headers=calls.headers(api_key), timeout=timeout
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _run(self, call: calls.Call[T]) -> T:
        response = await self._http.request(**call.send_args())
        raise_for_status(response)
        return call.parse(response)

    async def _stream(self, call: calls.Call[Any]) -> AsyncIterator[httpx.Response]:
        async with self._http.stream(**call.send_args()) as response:
            if not response.is_success:
                await response.aread()
                raise_for_status(response)
            yield response

    # ------------------------------------------------------------------ speech

    async def speech(
        self, text: str, *, response_format: str = "wav", **fields: Unpack[SpeechFields]
    ) -> bytes:
        """``POST /v1/tts``: the audio of ``text`` in ``response_format``."""
        return await self._run(calls.tts(calls.speech_body(text, fields), response_format))

    async def speech_info(
        self, text: str, *, audio_format: str = "wav", **fields: Unpack[SpeechFields]
    ) -> Speech:
        """``POST /v1/tts`` as JSON: the audio with its model, language, voice, seed, ..."""
        return await self._run(calls.tts_json(calls.speech_body(text, fields), audio_format))

    async def stream_speech(
        self, text: str, *, response_format: str = "pcm", **fields: Unpack[SpeechFields]
    ) -> AsyncIterator[bytes]:
        """``POST /v1/tts`` with ``stream``: the bytes of one file as the chunks finish."""
        call = calls.tts_stream(calls.speech_body(text, fields), response_format, sse=False)
        async for response in self._stream(call):
            async for data in response.aiter_bytes():
                yield data

    async def stream_segments(
        self, text: str, *, response_format: str = "pcm", **fields: Unpack[SpeechFields]
    ) -> AsyncIterator[Segment | bytes]:
        """``POST /v1/tts`` as server-sent events: each chunk's :class:`Segment` (its text and
        times), then its audio bytes; the bytes concatenate to one file."""
        call = calls.tts_stream(calls.speech_body(text, fields), response_format, sse=True)
        async for response in self._stream(call):
            async for line in response.aiter_lines():
                event = calls.decode_event(line)
                if event is not None:
                    yield event

    async def openai_speech(
        self,
        text: str,
        voice: str,
        *,
        model: str = "tts-1",
        response_format: str = "mp3",
        speed: float = 1.0,
    ) -> bytes:
        """``POST /v1/audio/speech`` (OpenAI's API): the audio."""
        return await self._run(calls.openai_speech(text, voice, model, response_format, speed))

    async def stream_openai_speech(
        self,
        text: str,
        voice: str,
        *,
        model: str = "tts-1",
        response_format: str = "mp3",
        speed: float = 1.0,
    ) -> AsyncIterator[bytes]:
        """``POST /v1/audio/speech``: the audio bytes as the chunks finish."""
        call = calls.openai_speech(text, voice, model, response_format, speed)
        async for response in self._stream(call):
            async for data in response.aiter_bytes():
                yield data

    # ------------------------------------------------------------------ jobs

    async def submit_job(
        self, text: str, *, job_id: str | None = None, **fields: Unpack[SpeechFields]
    ) -> Job:
        """``POST /v1/jobs``: store ``text`` for synthesis in the background."""
        submitted = await self._run(calls.submit_job(calls.speech_body(text, fields), job_id))
        return await self.get_job(submitted)

    async def get_job(self, job_id: str) -> Job:
        return await self._run(calls.get_job(job_id))

    async def cancel_job(self, job_id: str) -> Job:
        return await self._run(calls.cancel_job(job_id))

    async def list_jobs(
        self, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> JobList:
        return await self._run(calls.list_jobs(status, limit, offset))

    async def download_job(self, job_id: str, format: str = "wav") -> bytes:
        """The audio of a succeeded job, in any format."""
        return await self._run(calls.job_audio(job_id, format))

    async def wait_for_job(
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
            job = await self.get_job(job_id)
            if progress is not None:
                progress(job)
            if job.finished:
                return calls.succeeded(job)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
            await asyncio.sleep(poll_interval)

    # ------------------------------------------------------------------ voices

    async def upload_voice(
        self, name: str, audio: AudioInput, ref_text: str | None = None, language: str | None = None
    ) -> Voice:
        """``POST /v1/voices``: add a clip (bytes or a path) and its transcript (left out:
        heard by the server's speech recognition; given: ``warnings`` when it disagrees)."""
        return await self._run(calls.create_voice(name, audio, ref_text, language))

    async def list_voices(self) -> list[Voice]:
        return await self._run(calls.list_voices())

    async def get_voice(self, voice: str) -> Voice:
        """A voice by id or name."""
        return await self._run(calls.get_voice(voice))

    async def update_voice(
        self,
        voice: str,
        *,
        name: str | None = None,
        ref_text: str | None = None,
        language: str | None = None,
    ) -> Voice:
        changes = {"name": name, "ref_text": ref_text, "language": language}
        return await self._run(calls.update_voice(voice, changes))

    async def delete_voice(self, voice: str) -> None:
        await self._run(calls.delete_voice(voice))

    async def voice_audio(self, voice: str) -> bytes:
        """The cleaned reference clip of a voice (WAV)."""
        return await self._run(calls.voice_audio(voice))

    # ------------------------------------------------------------------ system

    async def models(self) -> list[Model]:
        return await self._run(calls.models())

    async def usage(self) -> list[KeyUsage]:
        """Today's usage and limits of this client's key (every key's for an admin key)."""
        return await self._run(calls.usage())

    async def health(self) -> dict[str, Any]:
        return await self._run(calls.health())

    async def ready(self) -> dict[str, Any]:
        """``GET /ready`` (a server that is not ready raises ServiceUnavailableError)."""
        return await self._run(calls.ready())
