"""OpenAI-compatible ``POST /v1/audio/speech``: the official ``openai`` client works unchanged.

``model`` may be OpenAI's names (``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts``: routed by language
to our models) or one of ours. ``voice`` is a library voice. ``stream_format: "sse"`` sends
``speech.audio.delta`` events (base64 audio) and then ``speech.audio.done``; with
a streamable ``response_format`` (``pcm``) the audio streams as chunks finish.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from f5serve.core.formats import encode_speech
from f5serve.core.services import Services
from f5serve.core.synthesis import SpeechRequest
from f5serve.engine.audio import FORMATS, SAMPLE_RATE, encode_audio
from f5serve.errors import F5ServeError
from f5serve.http.deps import ServicesDep, audio_response, check_sync_text
from f5serve.http.schemas import ErrorEnvelope, OpenAISpeechRequest
from f5serve.registry import AUTO

log = logging.getLogger(__name__)
router = APIRouter(tags=["openai"])
OPENAI_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-tts"})
SSE_DELTA_BYTES = 32_768  # bytes of audio per SSE event when the audio is sent whole
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 404, 413, 422, 503, 504)
}


@router.post(
    "/v1/audio/speech",
    summary="OpenAI-compatible speech",
    response_class=Response,
    responses=ERRORS,
)
async def speech(body: OpenAISpeechRequest, services: ServicesDep) -> Response:
    check_sync_text(services, body.input)
    request = SpeechRequest(
        text=body.input,
        voice=body.voice,
        language=AUTO,
        model=None if body.model in OPENAI_MODELS else body.model,
        options=dataclasses.replace(services.synthesizer.defaults, speed=body.speed),
    )
    fmt = FORMATS[body.response_format]
    if body.stream_format == "sse" or fmt.streamable:
        chunks = (
            _sse_deltas(services, request, fmt.name)
            if body.stream_format == "sse"
            else _pieces(services, request, fmt.name)
        )
        first = await _first(chunks)  # errors before the first byte are ordinary JSON errors
        if body.stream_format == "sse":
            return StreamingResponse(_sse(first, chunks), media_type="text/event-stream")
        return StreamingResponse(_chain(first, chunks), media_type=fmt.content_type)
    result, _ = await services.speak(request, "openai")
    return audio_response(await encode_speech(result, fmt.name), fmt.name)


async def _first(chunks: AsyncGenerator[bytes, None]) -> bytes:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return b""


async def _chain(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _pieces(
    services: Services, request: SpeechRequest, fmt: str
) -> AsyncGenerator[bytes, None]:
    """The audio of a streamable format, piece by piece as chunks finish."""
    async for piece in services.stream(request):
        yield encode_audio(piece, SAMPLE_RATE, fmt)


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


async def _sse_deltas(
    services: Services, request: SpeechRequest, fmt: str
) -> AsyncGenerator[bytes, None]:
    if FORMATS[fmt].streamable:
        async for data in _pieces(services, request, fmt):
            yield _delta(data)
        return
    result, _ = await services.speak(request, "openai")
    data = await encode_speech(result, fmt)
    for start in range(0, len(data), SSE_DELTA_BYTES):
        yield _delta(data[start : start + SSE_DELTA_BYTES])


def _delta(data: bytes) -> bytes:
    return _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()
