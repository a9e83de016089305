"""Shared route helpers: the services of the app, audio responses."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request, Response

from f5serve.core.services import Services
from f5serve.core.synthesis import Speech
from f5serve.engine.audio import CONTENT_TYPES, encode_audio


def get_services(request: Request) -> Services:
    """FastAPI dependency: the app's :class:`Services`."""
    services: Services = request.app.state.services
    return services


async def encode(speech: Speech, fmt: str) -> bytes:
    """Encode off the event loop (mp3/aac encoders take a while)."""
    return await asyncio.to_thread(encode_audio, speech.audio, speech.sample_rate, fmt)


def audio_response(data: bytes, fmt: str, headers: dict[str, str] | None = None) -> Response:
    return Response(data, media_type=CONTENT_TYPES[fmt], headers=headers)


ServicesDep = Annotated[Services, Depends(get_services)]
