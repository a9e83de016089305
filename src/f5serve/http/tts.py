"""POST /v1/tts (JSON) and POST /v1/tts/upload (multipart): synthesise and wait, or stream."""

from __future__ import annotations

import base64
import dataclasses
import inspect
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile

from f5serve.core.formats import encode_speech
from f5serve.core.params import SpeechParams
from f5serve.core.services import Services
from f5serve.core.subtitles import segment_dicts
from f5serve.core.synthesis import SpeechRequest, speech_request_from_dict
from f5serve.engine.audio import FORMATS
from f5serve.engine.options import option_fields
from f5serve.errors import InvalidInput, PayloadTooLarge
from f5serve.http.auth import TenantDep
from f5serve.http.deps import SPEECH_CONTENT, ServicesDep, audio_response, check_sync_text
from f5serve.http.schemas import SegmentTime, TTSRequest, TTSResponse, error_responses
from f5serve.http.streaming import speech_response

router = APIRouter(tags=["tts"])

ERRORS = error_responses(400, 404, 409, 413, 415, 422, 503, 504)
SPEECH: dict[str, Any] = {"content": SPEECH_CONTENT, "model": TTSResponse}


@router.post(
    "/v1/tts",
    summary="Synthesise speech and wait for it",
    responses={200: SPEECH, **ERRORS},
    response_model=None,
)
async def tts(body: TTSRequest, services: ServicesDep, tenant: TenantDep) -> Response:
    check_sync_text(services, body.text)
    if body.ref_audio is not None:
        _check_base64_size(body.ref_audio, services.settings.max_upload_bytes)
    defaults = services.synthesizer.defaults
    request = speech_request_from_dict(body.speech_body(), defaults, tenant)
    return await _respond(services, request, body)


async def tts_upload(
    services: ServicesDep,
    tenant: TenantDep,
    text: Annotated[str, Form()],
    ref_audio: Annotated[UploadFile, File(description="Reference clip (any audio format).")],
    ref_text: Annotated[
        str | None,
        Form(description="Transcript of the clip (left out: heard by speech recognition)."),
    ] = None,
    language: Annotated[str, Form()] = "auto",
    model: Annotated[str | None, Form()] = None,
    remove_silence: Annotated[bool, Form()] = False,
    response_format: Annotated[str, Form()] = "wav",
    audio_format: Annotated[str | None, Form()] = None,
    **options: Any,
) -> Response:
    """The fields of ``POST /v1/tts`` as form fields (those left out take its defaults)."""
    fields = {
        "text": text,
        "ref_text": ref_text,
        "language": language,
        "model": model,
        "remove_silence": remove_silence,
        "response_format": response_format,
        "audio_format": audio_format,
        **options,
    }
    body = TTSRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    check_sync_text(services, body.text)
    data = await read_upload(ref_audio, services.settings.max_upload_bytes)
    request = speech_request_from_dict(body.speech_body(), services.synthesizer.defaults, tenant)
    request = dataclasses.replace(request, ref_audio=data)
    return await _respond(services, request, body)


def _option_form_fields() -> list[inspect.Parameter]:
    """One form field per synthesis option, as the JSON body has it (type, default, help)."""
    params = []
    for f in option_fields():
        field = SpeechParams.model_fields[f.name]
        form = Form(description=field.description)
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=field.default,
                annotation=Annotated[field.annotation, form],
            )
        )
    return params


def _register_upload() -> None:
    fixed = list(inspect.signature(tts_upload).parameters.values())[:-1]  # without **options
    tts_upload.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*fixed, *_option_form_fields()], return_annotation=Response
    )
    router.post(
        "/v1/tts/upload",
        summary="Synthesise speech with the reference clip as a file upload (multipart)",
        responses={200: SPEECH, **ERRORS},
        response_model=None,
    )(tts_upload)


_register_upload()


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The bytes of an upload, refusing more than ``limit`` (413)."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the uploaded file is larger than {limit} bytes")
    return data


async def _stream(services: Services, request: SpeechRequest, body: TTSRequest) -> Response:
    if body.response_format == "json":
        raise InvalidInput(
            "a stream sends audio: give an audio response_format (json is not streamed)"
        )
    if body.remove_silence:
        raise InvalidInput("remove_silence needs the whole audio: it cannot be streamed")
    return await speech_response(services, request, body.response_format, body.stream_format, "tts")


def _check_base64_size(value: str, limit: int) -> None:
    if len(value) * 3 // 4 > limit + 3:
        raise PayloadTooLarge(f"ref_audio is larger than {limit} bytes")


async def _respond(services: Services, request: SpeechRequest, body: TTSRequest) -> Response:
    if body.stream or body.stream_format == "sse":
        return await _stream(services, request, body)
    speech, wall = await services.speak(request, "tts")
    fmt = body.audio_format if body.response_format == "json" else body.response_format
    data = await encode_speech(speech, fmt)
    if body.response_format != "json":
        return audio_response(data, fmt, {"X-Processing-Time": f"{wall:.3f}"})
    payload = TTSResponse(
        job_id=uuid.uuid4().hex,
        audio_base64=base64.b64encode(data).decode(),
        content_type=FORMATS[fmt].content_type,
        sample_rate=speech.sample_rate,
        duration=round(speech.duration, 3),
        processing_time_seconds=round(wall, 3),
        model=speech.model,
        language=speech.language,
        voice=speech.voice,
        seed=speech.seed,
        segments=[SegmentTime(**s) for s in segment_dicts(speech.segments)],
    )
    return Response(payload.model_dump_json(), media_type="application/json")
