"""The one options type: ranges and defaults come from its fields, and every door exposes every
option (the HTTP JSON body, the upload form, RunPod input and the ``synth`` flags)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
import typer
from fastapi import FastAPI

from f5serve import SynthesisOptions
from f5serve.cli import app as cli_app
from f5serve.core.params import SpeechParams
from f5serve.core.settings import Settings
from f5serve.core.synthesis import speech_request_from_dict
from f5serve.engine.options import option_fields, option_types
from f5serve.errors import InvalidInput
from f5serve.http import tts
from f5serve.runpod.inputs import TTSInput

OPTIONS = [f.name for f in option_fields()]
BOUNDED = [f for f in option_fields() if f.metadata["bounds"]]


def _outside(f: dataclasses.Field[Any]) -> list[float]:
    """Values just outside each bound of ``f`` (a bound that is exclusive is itself outside)."""
    kind = option_types()[f.name]
    step = 1 if int in (kind, *typing.get_args(kind)) else 0.01
    edges = {"ge": -step, "gt": 0, "le": step, "lt": 0}
    return [limit + edges[op] for op, limit in f.metadata["bounds"].items()]


def test_the_defaults_are_valid_and_every_option_has_help() -> None:
    SynthesisOptions().validate()
    assert all(f.metadata["help"].strip() for f in option_fields())


@pytest.mark.parametrize("f", BOUNDED, ids=lambda f: f.name)
def test_validate_refuses_each_bound_and_names_the_option(f: dataclasses.Field[Any]) -> None:
    for value in _outside(f):
        with pytest.raises(InvalidInput, match=rf"^{f.name} must be "):
            SynthesisOptions(**{f.name: value}).validate()


def test_range_messages_read_well() -> None:
    messages = {}
    for name, value in (("cross_fade", 3.0), ("seed", -1), ("fix_duration", 0.0)):
        with pytest.raises(InvalidInput) as caught:
            SynthesisOptions(**{name: value}).validate()
        messages[name] = caught.value.message
    assert messages == {
        "cross_fade": "cross_fade must be between 0 and 2 seconds",
        "seed": "seed must be at least 0 and below 2**63",
        "fix_duration": "fix_duration must be above 0 and at most 60 seconds",
    }


def test_merged_applies_overrides_and_refuses_unknown_names() -> None:
    base = SynthesisOptions(nfe_steps=16)
    assert base.merged({"speed": 1.5}) == SynthesisOptions(nfe_steps=16, speed=1.5)
    assert base.merged({}) is base
    with pytest.raises(TypeError):
        base.merged({"steps": 8})


def test_a_stored_job_request_of_today_loads_with_the_service_defaults() -> None:
    stored = {  # what POST /v1/jobs stored before the options type existed
        "text": "Hello.",
        "voice": "narrator",
        "language": "auto",
        "speed": 1.25,
        "cfg_strength": 2.0,
        "sway_sampling_coef": None,  # explicitly no sway
        "cross_fade": 0.15,
        "remove_silence": True,
    }
    settings = Settings(_env_file=None, nfe_steps=12)  # type: ignore[call-arg]
    request = speech_request_from_dict(stored, settings.synthesis_defaults())
    assert request.options == SynthesisOptions(nfe_steps=12, speed=1.25, sway_sampling_coef=None)
    assert request.remove_silence and request.voice == "narrator"
    given = speech_request_from_dict({**stored, "nfe_steps": None, "seed": 3}, SynthesisOptions())
    assert given.options.nfe_steps == 32 and given.options.seed == 3


def test_the_settings_default_comes_from_the_options_type() -> None:
    assert Settings.model_fields["nfe_steps"].default == SynthesisOptions().nfe_steps
    assert Settings(_env_file=None).synthesis_defaults() == SynthesisOptions()  # type: ignore[call-arg]


@pytest.mark.parametrize("f", option_fields(), ids=lambda f: f.name)
def test_the_json_body_has_each_option_with_its_range_and_help(f: dataclasses.Field[Any]) -> None:
    schema = SpeechParams.model_json_schema()["properties"][f.name]
    assert schema["description"].startswith(f.metadata["help"].rstrip("."))
    text = str(schema)
    words = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}
    for op, limit in f.metadata["bounds"].items():
        assert f"'{words[op]}': {limit}" in text
    if f.name not in Settings.model_fields:  # a server setting's default is the server's
        assert schema.get("default") == f.default


def test_every_door_exposes_every_option() -> None:
    app = FastAPI()
    app.include_router(tts.router)
    spec = app.openapi()
    form_ref = spec["paths"]["/v1/tts/upload"]["post"]["requestBody"]["content"]
    form_name = form_ref["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    form = spec["components"]["schemas"][form_name]["properties"]
    json_body = spec["components"]["schemas"]["TTSRequest"]["properties"]
    synth = typer.main.get_command(cli_app).commands["synth"]  # type: ignore[attr-defined]
    flags = {p.name for p in synth.params}
    assert set(OPTIONS) <= set(json_body)
    assert set(OPTIONS) <= set(form)
    assert set(OPTIONS) <= set(TTSInput.model_fields)
    assert set(OPTIONS) <= flags


def test_runpod_input_validates_options_like_the_api() -> None:
    with pytest.raises(ValueError, match="nfe_steps"):
        TTSInput.model_validate({"text": "Hi.", "nfe_steps": 0})
    parsed = TTSInput.model_validate({"text": "Hi.", "fix_duration": 4.5})
    assert parsed.speech_request_body()["fix_duration"] == 4.5
