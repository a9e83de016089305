"""Shared route helpers: the services of the app, audio responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from f5serve.core.services import Services
from f5serve.core.synthesis import check_text
from f5serve.engine.audio import FORMATS, output_format

# The OpenAPI content of an audio answer (any output format), and of a synthesis that may also
# stream server-sent events
AUDIO_CONTENT: dict[str, Any] = {t: {} for t in sorted({f.content_type for f in FORMATS.values()})}
SPEECH_CONTENT: dict[str, Any] = {**AUDIO_CONTENT, "text/event-stream": {}}


def get_services(request: Request) -> Services:
    """FastAPI dependency: the app's :class:`Services`."""
    services: Services = request.app.state.services
    return services


def check_sync_text(services: Services, text: str) -> None:
    """The text limit of the routes that answer with the audio (longer texts go to jobs)."""
    check_text(text, services.settings.max_text_chars, "use /v1/jobs for long texts")


def audio_response(data: bytes, fmt: str, headers: dict[str, str] | None = None) -> Response:
    return Response(data, media_type=output_format(fmt).content_type, headers=headers)


ServicesDep = Annotated[Services, Depends(get_services)]
