"""The voice library: upload (multipart), list, read, rename/edit, delete, download the clip.

A key sees its own voices and the shared voices of the voices directory (another key's voice is
404); changing a shared voice needs an admin key (403). Names are unique per key: a name is the
key's own voice first, then a shared one (see :meth:`VoiceLibrary.get`)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from f5serve.core import listing
from f5serve.core.db import VoiceRow
from f5serve.core.listing import VoiceInfo
from f5serve.core.services import Services
from f5serve.core.tenants import Tenant, owner_of, sees_all
from f5serve.errors import InvalidInput
from f5serve.http.auth import TenantDep
from f5serve.http.deps import ServicesDep
from f5serve.http.schemas import Voice, VoiceList, VoicePatch, error_responses
from f5serve.http.tts import read_upload

router = APIRouter(prefix="/v1/voices", tags=["voices"])
ERRORS = error_responses(400, 404, 409, 413, 415, 422, 503)
SHARED = error_responses(403, descriptions={403: "A shared voice, and the key is not an admin"})


@router.post("", status_code=201, summary="Add a voice (multipart upload)", responses=ERRORS)
async def create_voice(
    services: ServicesDep,
    tenant: TenantDep,
    name: Annotated[
        str,
        Form(
            description="Name, unique among the key's voices, used as `voice` in requests (the "
            "key's own voice comes before a shared voice of the same name)."
        ),
    ],
    audio: Annotated[UploadFile, File(description="Reference clip: wav, flac, mp3, ogg, m4a...")],
    ref_text: Annotated[
        str | None,
        Form(
            description="Transcript of the clip (left out: heard by speech recognition, with "
            "f5serve[asr]; given: checked against the clip, a disagreement is a warning)."
        ),
    ] = None,
    language: Annotated[str | None, Form()] = None,
    pronunciations: Annotated[
        str | None,
        Form(description='JSON object {"word or /pattern/": "replacement"} for this voice.'),
    ] = None,
) -> Voice:
    entries = parse_json_object(pronunciations, "pronunciations")
    data = await read_upload(audio, services.settings.max_upload_bytes)
    row = await asyncio.to_thread(
        services.voices.create, name, data, ref_text, language, "upload", entries, owner_of(tenant)
    )
    given = ref_text is not None and ref_text.strip() != ""
    warnings = await _transcript_warnings(services, row) if given else []
    return voice_view(listing.voice(services.voices, row), tenant, warnings)


@router.get("", summary="List voices", responses=ERRORS)
async def list_voices(services: ServicesDep, tenant: TenantDep) -> VoiceList:
    voices = await asyncio.to_thread(listing.voices, services.voices, tenant)
    return VoiceList(voices=[voice_view(v, tenant) for v in voices])


@router.get("/{voice_id}", summary="A voice (by id or name)", responses=ERRORS)
async def get_voice(voice_id: str, services: ServicesDep, tenant: TenantDep) -> Voice:
    row = await asyncio.to_thread(services.voices.get, voice_id, tenant)
    return voice_view(listing.voice(services.voices, row), tenant)


@router.patch(
    "/{voice_id}",
    summary="Rename a voice or fix its transcript (a new one is checked against the clip)",
    responses={**ERRORS, **SHARED},
)
async def patch_voice(
    voice_id: str, body: VoicePatch, services: ServicesDep, tenant: TenantDep
) -> Voice:
    row = await asyncio.to_thread(
        services.voices.update,
        voice_id,
        body.name,
        body.ref_text,
        body.language,
        body.pronunciations,
        tenant,
    )
    warnings = await _transcript_warnings(services, row) if body.ref_text is not None else []
    return voice_view(listing.voice(services.voices, row), tenant, warnings)


@router.delete(
    "/{voice_id}", status_code=204, summary="Delete a voice", responses={**ERRORS, **SHARED}
)
async def delete_voice(voice_id: str, services: ServicesDep, tenant: TenantDep) -> Response:
    await asyncio.to_thread(services.voices.delete, voice_id, tenant)
    return Response(status_code=204)


@router.get(
    "/{voice_id}/audio",
    summary="The cleaned reference clip (24 kHz WAV)",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}, **ERRORS},
)
async def voice_audio(voice_id: str, services: ServicesDep, tenant: TenantDep) -> Response:
    data = await asyncio.to_thread(services.voices.audio, voice_id, tenant)
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


async def _transcript_warnings(services: Services, row: VoiceRow) -> list[str]:
    return await asyncio.to_thread(services.voices.transcript_warnings, row)


def voice_view(voice: VoiceInfo, tenant: Tenant | None, warnings: list[str] | None = None) -> Voice:
    """The API view of a voice; its owner is shown to admin keys only."""
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
        warnings=warnings or [],
        owner=voice.owner if sees_all(tenant) else None,
    )
