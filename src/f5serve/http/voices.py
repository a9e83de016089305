"""The voice library: upload (multipart), list, read, rename/edit, delete, download the clip."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile

from f5serve.core.db import VoiceRow
from f5serve.core.jobs.store import as_utc
from f5serve.http.deps import ServicesDep
from f5serve.http.schemas import ErrorEnvelope, Voice, VoiceList, VoicePatch
from f5serve.http.tts import read_upload

router = APIRouter(prefix="/v1/voices", tags=["voices"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (401, 404, 409, 413, 415, 422)
}


@router.post("", status_code=201, summary="Add a voice (multipart upload)", responses=ERRORS)
async def create_voice(
    services: ServicesDep,
    name: Annotated[str, Form(description="Unique name, used as `voice` in requests.")],
    audio: Annotated[UploadFile, File(description="Reference clip: wav, flac, mp3, ogg, m4a...")],
    ref_text: Annotated[str, Form(description="Transcript of the clip.")],
    language: Annotated[str | None, Form()] = None,
) -> Voice:
    data = await read_upload(audio, services.settings.max_upload_bytes)
    row = await asyncio.to_thread(services.voices.create, name, data, ref_text, language)
    return voice_view(row)


@router.get("", summary="List voices")
async def list_voices(services: ServicesDep) -> VoiceList:
    rows = await asyncio.to_thread(services.voices.all)
    return VoiceList(voices=[voice_view(v) for v in rows])


@router.get("/{voice_id}", summary="A voice (by id or name)", responses=ERRORS)
async def get_voice(voice_id: str, services: ServicesDep) -> Voice:
    return voice_view(await asyncio.to_thread(services.voices.get, voice_id))


@router.patch("/{voice_id}", summary="Rename a voice or fix its transcript", responses=ERRORS)
async def patch_voice(voice_id: str, body: VoicePatch, services: ServicesDep) -> Voice:
    row = await asyncio.to_thread(
        services.voices.update, voice_id, body.name, body.ref_text, body.language
    )
    return voice_view(row)


@router.delete("/{voice_id}", status_code=204, summary="Delete a voice", responses=ERRORS)
async def delete_voice(voice_id: str, services: ServicesDep) -> Response:
    await asyncio.to_thread(services.voices.delete, voice_id)
    return Response(status_code=204)


@router.get(
    "/{voice_id}/audio",
    summary="The cleaned reference clip (24 kHz WAV)",
    response_class=Response,
    responses=ERRORS,
)
async def voice_audio(voice_id: str, services: ServicesDep) -> Response:
    data = await asyncio.to_thread(services.voices.audio, voice_id)
    return Response(data, media_type="audio/wav")


def voice_view(row: VoiceRow) -> Voice:
    created, updated = as_utc(row.created_at), as_utc(row.updated_at)
    assert created is not None and updated is not None
    return Voice(
        id=row.id,
        name=row.name,
        ref_text=row.ref_text,
        language=row.language,
        source=row.source,  # type: ignore[arg-type]
        duration=round(row.duration, 3),
        created_at=created,
        updated_at=updated,
        links={"self": f"/v1/voices/{row.id}", "audio": f"/v1/voices/{row.id}/audio"},
    )
