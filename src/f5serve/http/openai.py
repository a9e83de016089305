"""OpenAI-compatible ``POST /v1/audio/speech``: the official ``openai`` client works unchanged.

``model`` may be OpenAI's names (``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts``: routed by language
to our models) or one of ours. ``voice`` is a library voice. The audio streams as the chunks of
the text finish (``stream_format`` ``audio`` or ``sse``; see :mod:`f5serve.http.streaming`).
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Response

from f5serve.core.synthesis import SpeechRequest
from f5serve.http.auth import TenantDep
from f5serve.http.deps import SPEECH_CONTENT, ServicesDep, check_sync_text
from f5serve.http.schemas import OpenAISpeechRequest, error_responses
from f5serve.http.streaming import speech_response
from f5serve.registry import AUTO

router = APIRouter(tags=["openai"])
OPENAI_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-tts"})
ERRORS = error_responses(400, 404, 409, 413, 422, 503, 504)


@router.post(
    "/v1/audio/speech",
    summary="OpenAI-compatible speech",
    response_class=Response,
    responses={200: {"content": SPEECH_CONTENT}, **ERRORS},
)
async def speech(body: OpenAISpeechRequest, services: ServicesDep, tenant: TenantDep) -> Response:
    check_sync_text(services, body.input)
    request = SpeechRequest(
        text=body.input,
        voice=body.voice,
        language=AUTO,
        model=None if body.model in OPENAI_MODELS else body.model,
        options=dataclasses.replace(services.synthesizer.defaults, speed=body.speed),
        tenant=tenant,
    )
    fmt, stream_format = body.response_format, body.stream_format
    return await speech_response(services, request, fmt, stream_format, "openai", segments=False)
