"""``WS /v1/tts/stream-input``: text arrives in pieces, each finished sentence is spoken at once.

For text made as it is read (a language model's tokens), in the manner of ElevenLabs'
``stream-input``. The client sends JSON messages:

1. the set-up, once: the fields of ``POST /v1/tts`` without ``text`` (voice, model, language,
   options; ``response_format`` one of the streamable formats, ``pcm`` by default);
2. ``{"text": "piece"}`` any number of times; ``"flush": true`` in a message speaks what is
   buffered even without a sentence end;
3. ``{"text": ""}``: the end of the text; what is buffered is spoken, then the server closes.

The server answers with the events of the SSE stream (:mod:`f5serve.http.streaming`) as JSON
messages: ``speech.segment`` (text, start, end in seconds of the whole session's audio) and
``speech.audio.delta`` (base64 bytes of one file that runs across the whole session), then
``speech.audio.done``; a problem is an ``error`` event and the socket closes (1008 for a missing
key or a key over its limits, 1011 otherwise). The session is one request of its key, and its
audio counts as the key's as it is sent. Each sentence is one synthesis (chunked as
``/v1/tts`` chunks), within ``max_text_chars`` and ``request_timeout``; sentence *i* uses
``seed + i`` when a seed is given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from f5serve.core.params import SpeechParams, parse
from f5serve.core.services import Services
from f5serve.core.synthesis import SpeechRequest, speech_request_from_dict
from f5serve.core.tenants import Tenant
from f5serve.engine.audio import SAMPLE_RATE
from f5serve.engine.audio_codecs import StreamEncoder, open_stream
from f5serve.errors import (
    F5ServeError,
    InvalidInput,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
)
from f5serve.http.streaming import delta, segment

router = APIRouter(tags=["tts"])
SENTENCE_END = re.compile(r"(?<=[.!?;:。！？；：…])\s+")
END = None  # put on the sentence queue when the text is over


@router.websocket("/v1/tts/stream-input")
async def stream_input(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    try:
        tenant = await _tenant(websocket, services)
        template, encoder = _start(await websocket.receive_json(), services, tenant)
        sentences: asyncio.Queue[str | F5ServeError | None] = asyncio.Queue()
        reader = asyncio.create_task(_read_text(websocket, sentences, services))
        try:
            await _speak(websocket, services, template, encoder, sentences)
        finally:
            reader.cancel()
        await websocket.send_json({"type": "speech.audio.done"})
        await websocket.close()
    except WebSocketDisconnect:
        return
    except (F5ServeError, ValueError) as exc:
        error = exc if isinstance(exc, F5ServeError) else InvalidInput("messages must be JSON")
        await websocket.send_json({"type": "error", "error": error.to_dict()})
        refused = isinstance(error, (Unauthorized, TooManyRequests))
        await websocket.close(code=1008 if refused else 1011)


async def _tenant(websocket: WebSocket, services: Services) -> Tenant | None:
    """The session's tenant, from ``Authorization: Bearer`` or, for browsers, the ``api_key``
    query (one request against its requests per minute)."""
    header = websocket.headers.get("authorization", "")
    given = (
        header[7:]
        if header.lower().startswith("bearer ")
        else websocket.query_params.get("api_key", "")
    )
    ask = "'Authorization: Bearer <key>' or ?api_key="
    return await asyncio.to_thread(services.tenancy.admit, given, ask)


def _start(
    message: Any, services: Services, tenant: Tenant | None
) -> tuple[SpeechRequest, StreamEncoder]:
    """The set-up message: a request template (its text is replaced per sentence) and the
    encoder of the session's audio."""
    if not isinstance(message, dict):
        raise InvalidInput("the first message sets up the session: a JSON object")
    fields = dict(message)
    fmt = str(fields.pop("response_format", "pcm"))
    params = parse(SpeechParams, {**fields, "text": "-"})
    if params.remove_silence:
        raise InvalidInput("remove_silence needs the whole audio: it cannot be streamed")
    encoder = open_stream(fmt, SAMPLE_RATE)  # InvalidInput for a format that cannot stream
    request = speech_request_from_dict(params.speech_body(), services.synthesizer.defaults, tenant)
    return request, encoder


async def _read_text(
    websocket: WebSocket, sentences: asyncio.Queue[str | F5ServeError | None], services: Services
) -> None:
    """Buffer the text messages; queue each finished sentence (and the rest on flush or end)."""
    buffer = ""
    limit = services.settings.max_text_chars
    try:
        while True:
            message = await websocket.receive_json()
            if not isinstance(message, dict) or not isinstance(message.get("text", ""), str):
                raise InvalidInput('text messages are {"text": "..."} objects')
            last = message.get("text") == ""
            *done, buffer = SENTENCE_END.split(buffer + message.get("text", ""))
            if last or message.get("flush"):
                done, buffer = [*done, buffer], ""
            for sentence in done:
                if sentence.strip():
                    sentences.put_nowait(sentence.strip())
            if len(buffer) > limit:
                raise PayloadTooLarge(f"over {limit} characters without a sentence end")
            if last:
                sentences.put_nowait(END)
                return
    except F5ServeError as exc:
        sentences.put_nowait(exc)
    except (WebSocketDisconnect, ValueError):
        sentences.put_nowait(
            InvalidInput("the connection closed or sent a message that is not JSON")
        )


async def _speak(
    websocket: WebSocket,
    services: Services,
    template: SpeechRequest,
    encoder: StreamEncoder,
    sentences: asyncio.Queue[str | F5ServeError | None],
) -> None:
    """Synthesise the queued sentences in order, sending each chunk as it is made."""
    offset, index = 0.0, 0
    seed = template.options.seed
    for number in itertools.count():
        sentence = await sentences.get()
        if isinstance(sentence, F5ServeError):
            raise sentence
        if sentence is END:
            break
        options = dataclasses.replace(
            template.options, seed=None if seed is None else seed + number
        )
        request = dataclasses.replace(template, text=sentence, options=options)
        end = 0.0
        async for chunk in services.stream(request):
            placed = dataclasses.replace(
                chunk, index=index, start=offset + chunk.start, end=offset + chunk.end
            )
            await websocket.send_json(segment(placed))
            data = await asyncio.to_thread(encoder.write, chunk.audio)
            if data:
                await websocket.send_json(delta(data))
            index, end = index + 1, chunk.end
        offset += end
    tail = await asyncio.to_thread(encoder.close)
    if tail:
        await websocket.send_json(delta(tail))
