"""The voice library: upload (multipart), list, read, rename/edit, delete, download the clip."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from f5serve.core import listing
from f5serve.core.listing import VoiceInfo
from f5serve.errors import InvalidInput
from f5serve.http.deps import ServicesDep
from f5serve.http.schemas import Voice, VoiceList, VoicePatch, error_responses
from f5serve.http.tts import read_upload

router = APIRouter(prefix="/v1/voices", tags=["voices"])
ERRORS = error_responses(400, 401, 404, 409, 413, 415, 422, 503)


@router.post("", status_code=201, summary="Add a voice (multipart upload)", responses=ERRORS)
async def create_voice(
    services: ServicesDep,
    name: Annotated[str, Form(description="Unique name, used as `voice` in requests.")],
    audio: Annotated[UploadFile, File(description="Reference clip: wav, flac, mp3, ogg, m4a...")],
    ref_text: Annotated[str, Form(description="Transcript of the clip.")],
    language: Annotated[str | None, Form()] = None,
    pronunciations: Annotated[
        str | None,
        Form(description='JSON object {"word or /pattern/": "replacement"} for this voice.'),
    ] = None,
) -> Voice:
    entries = parse_json_object(pronunciations, "pronunciations")
    data = await read_upload(audio, services.settings.max_upload_bytes)
    row = await asyncio.to_thread(
        services.voices.create, name, data, ref_text, language, "upload", entries
    )
    return voice_view(listing.voice(services.voices, row))


@router.get("", summary="List voices", responses=ERRORS)
async def list_voices(services: ServicesDep) -> VoiceList:
    voices = await asyncio.to_thread(listing.voices, services.voices)
    return VoiceList(voices=[voice_view(v) for v in voices])


@router.get("/{voice_id}", summary="A voice (by id or name)", responses=ERRORS)
async def get_voice(voice_id: str, services: ServicesDep) -> Voice:
    row = await asyncio.to_thread(services.voices.get, voice_id)
    return voice_view(listing.voice(services.voices, row))


@router.patch("/{voice_id}", summary="Rename a voice or fix its transcript", responses=ERRORS)
async def patch_voice(voice_id: str, body: VoicePatch, services: ServicesDep) -> Voice:
    row = await asyncio.to_thread(
        services.voices.update,
        voice_id,
        body.name,
        body.ref_text,
        body.language,
        body.pronunciations,
    )
    return voice_view(listing.voice(services.voices, row))


@router.delete("/{voice_id}", status_code=204, summary="Delete a voice", responses=ERRORS)
async def delete_voice(voice_id: str, services: ServicesDep) -> Response:
    await asyncio.to_thread(services.voices.delete, voice_id)
    return Response(status_code=204)


@router.get(
    "/{voice_id}/audio",
    summary="The cleaned reference clip (24 kHz WAV)",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}, **ERRORS},
)
async def voice_audio(voice_id: str, services: ServicesDep) -> Response:
    data = await asyncio.to_thread(services.voices.audio, voice_id)
    return Response(data, media_type="audio/wav")


def parse_json_object(text: str | None, field: str) -> dict[str, str] | None:
    """A form field holding a JSON object (422 naming ``field`` when it is not one)."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidInput(f"{field} is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object")
    return value


def voice_view(voice: VoiceInfo) -> Voice:
    return Voice(
        id=voice.id,
        name=voice.name,
        ref_text=voice.ref_text,
        language=voice.language,
        source=voice.source,  # type: ignore[arg-type]
        duration=voice.duration,
        created_at=voice.created_at,
        updated_at=voice.updated_at,
        pronunciations=voice.pronunciations,
        links={"self": f"/v1/voices/{voice.id}", "audio": f"/v1/voices/{voice.id}/audio"},
    )
