"""Speech sent while it is made, for ``/v1/tts`` and ``/v1/audio/speech``.

``stream_format: "audio"``: the bytes of one file, sent as the chunks of the text finish, for the
formats that can stream (``FORMATS[...].streamable``: an encoder kept open across chunks); other
formats are encoded whole and sent at the end. ``stream_format: "sse"``: server-sent events as
OpenAI defines them (``speech.audio.delta`` with base64 audio, then ``speech.audio.done``), and
for ``/v1/tts`` (not the OpenAI route, whose clients expect only OpenAI's events) before each
chunk's audio a ``speech.segment`` event with the chunk's ``text``, ``start`` and ``end``
(seconds in the whole output). Errors before the first byte are ordinary JSON errors;
after it, an SSE stream ends with an ``error`` event (an audio stream just stops).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal

import numpy as np
from fastapi import Response
from fastapi.responses import StreamingResponse

from f5serve.core.formats import encode_speech
from f5serve.core.services import Services
from f5serve.core.subtitles import segment_dict
from f5serve.core.synthesis import SpeechRequest
from f5serve.engine.audio import FORMATS, SAMPLE_RATE, encode_audio
from f5serve.engine.audio_codecs import open_stream
from f5serve.engine.scheduler import StreamedChunk
from f5serve.errors import F5ServeError
from f5serve.http.deps import audio_response

log = logging.getLogger(__name__)
SSE_DELTA_BYTES = 32_768  # bytes of audio per SSE event when the audio is encoded whole
StreamFormat = Literal["audio", "sse"]


async def speech_response(
    services: Services,
    request: SpeechRequest,
    fmt: str,
    stream_format: StreamFormat,
    kind: str,
    segments: bool = True,
) -> Response:
    """The speech of ``request`` in format ``fmt``, streamed as ``stream_format`` says (SSE
    with ``speech.segment`` events when ``segments``)."""
    if stream_format == "sse":
        events = _events(services, request, fmt, segments)
        first = await _first(events)
        return StreamingResponse(_sse(first, events), media_type="text/event-stream")
    if not FORMATS[fmt].streamable:
        speech, wall = await services.speak(request, kind)
        data = await encode_speech(speech, fmt)
        return audio_response(data, fmt, {"X-Processing-Time": f"{wall:.3f}"})
    pieces = _audio(services, request, fmt)
    first = await _first(pieces)
    return StreamingResponse(_chain(first, pieces), media_type=FORMATS[fmt].content_type)


async def _audio(
    services: Services, request: SpeechRequest, fmt: str
) -> AsyncGenerator[bytes, None]:
    """The bytes of one file in a streamable format, as the chunks finish."""
    encoder = open_stream(fmt, SAMPLE_RATE)
    async for chunk in services.stream(request):
        data = await asyncio.to_thread(encoder.write, chunk.audio)
        if data:
            yield data
    yield await asyncio.to_thread(encoder.close)


async def _events(
    services: Services, request: SpeechRequest, fmt: str, segments: bool
) -> AsyncGenerator[bytes, None]:
    """SSE events: each chunk's segment and audio (whole-file formats: all audio at the end)."""
    encoder = open_stream(fmt, SAMPLE_RATE) if FORMATS[fmt].streamable else None
    held: list[np.ndarray] = []
    async for chunk in services.stream(request):
        if segments:
            yield _event(segment(chunk))
        if encoder is None:
            held.append(chunk.audio)
            continue
        data = await asyncio.to_thread(encoder.write, chunk.audio)
        if data:
            yield _event(delta(data))
    if encoder is not None:
        tail = await asyncio.to_thread(encoder.close)
        if tail:
            yield _event(delta(tail))
        return
    data = await asyncio.to_thread(encode_audio, np.concatenate(held), SAMPLE_RATE, fmt)
    for start in range(0, len(data), SSE_DELTA_BYTES):
        yield _event(delta(data[start : start + SSE_DELTA_BYTES]))


async def _first(chunks: AsyncGenerator[bytes, None]) -> bytes:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return b""


async def _chain(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _sse(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        async for event in _chain(first, rest):
            yield event
    except F5ServeError as exc:  # the status line is sent: report the error as an event
        log.warning("speech stream failed: %s: %s", exc.code, exc.message)
        yield _event({"type": "error", "error": exc.to_dict()})
        return
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    yield _event({"type": "speech.audio.done", "usage": usage})


def segment(chunk: StreamedChunk) -> dict[str, Any]:
    """The ``speech.segment`` event of one chunk (times in seconds, to the millisecond; the
    quality check's ``attempts`` when it ran)."""
    times = segment_dict(chunk.text, round(chunk.start, 3), round(chunk.end, 3), chunk.attempts)
    return {"type": "speech.segment", "index": chunk.index, **times}


def delta(data: bytes) -> dict[str, Any]:
    """The ``speech.audio.delta`` event of some audio bytes."""
    return {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()
