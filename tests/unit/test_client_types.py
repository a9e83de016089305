"""The client's types follow the server's schemas, and error answers become typed exceptions."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from f5serve.client import (
    APIError,
    GoneError,
    Job,
    KeyUsage,
    Model,
    RateLimitError,
    ServiceUnavailableError,
    Speech,
    SpeechFields,
    SpeechOptions,
    Voice,
)
from f5serve.client.errors import raise_for_status
from f5serve.core.params import SpeechParams
from f5serve.engine.options import option_fields
from f5serve.http.schemas import JobStatus, ModelCard, TTSResponse
from f5serve.http.schemas import KeyUsage as KeyUsageSchema
from f5serve.http.schemas import Voice as VoiceSchema


def test_speech_options_are_the_synthesis_options() -> None:
    assert set(SpeechOptions.__annotations__) == {f.name for f in option_fields()}
    speaker = set(SpeechFields.__annotations__) - set(SpeechOptions.__annotations__)
    assert speaker | set(SpeechOptions.__annotations__) | {"text"} == set(SpeechParams.model_fields)


@pytest.mark.parametrize(
    ("ours", "schema", "left_out"),
    [
        (Job, JobStatus, set()),
        (Voice, VoiceSchema, set()),
        (Model, ModelCard, {"object", "created", "owned_by"}),
        (Speech, TTSResponse, {"audio_base64"}),
        (KeyUsage, KeyUsageSchema, set()),
    ],
)
def test_client_types_have_the_fields_of_the_server_schemas(
    ours: type[Any], schema: type[BaseModel], left_out: set[str]
) -> None:
    fields = {f.name for f in dataclasses.fields(ours)} - {"audio"}
    assert fields == set(schema.model_fields) - left_out


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("GET", "http://f5serve/v1/jobs")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_an_error_envelope_becomes_a_typed_exception_with_retry_after() -> None:
    error = {"code": "overloaded", "message": "busy", "details": {"retry_after": 7}}
    with pytest.raises(ServiceUnavailableError) as busy:
        raise_for_status(response(503, {"error": error}, {"Retry-After": "7"}))
    assert (busy.value.status, busy.value.code, busy.value.message) == (503, "overloaded", "busy")
    assert busy.value.retry_after == 7 and busy.value.details == {"retry_after": 7}
    with pytest.raises(RateLimitError) as full:
        raise_for_status(response(429, {"error": {"code": "queue_full", "message": "full"}}))
    assert full.value.retry_after is None
    with pytest.raises(GoneError):
        raise_for_status(response(410, {"error": {"code": "expired", "message": "gone"}}))


def test_an_answer_without_the_envelope_is_still_an_api_error() -> None:
    request = httpx.Request("GET", "http://f5serve/")
    with pytest.raises(APIError) as caught:
        raise_for_status(httpx.Response(502, text="Bad Gateway", request=request))
    assert caught.value.status == 502 and caught.value.code == "http_error"
    assert caught.value.message == "Bad Gateway"
    raise_for_status(response(200, {}))  # success raises nothing
