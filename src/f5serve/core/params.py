"""The wire shape of a speech request, shared by every door (HTTP, RunPod, stored jobs).

Its option fields are derived from :class:`~f5serve.engine.options.SynthesisOptions`: names,
types, defaults, ranges and descriptions. An option that the service has a setting for (a
:class:`~f5serve.core.settings.Settings` field of the same name, such as ``nfe_steps``) is
optional here: left out, the server's setting applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from f5serve.core.settings import Settings
from f5serve.engine.options import nullable, option_fields, option_types
from f5serve.errors import BadRequest, F5ServeError, InvalidInput

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


def option_field_definitions() -> dict[str, Any]:
    """``{name: (type, FieldInfo)}`` of every synthesis option, for :func:`create_model`."""
    types = option_types()
    definitions: dict[str, Any] = {}
    for f in option_fields():
        bounds = f.metadata["bounds"]
        help_text = f.metadata["help"]
        if f.name in Settings.model_fields:  # the server's setting is the default
            server = help_text.rstrip(".") + " (server default)."
            info = Field(default=None, description=server, **bounds)
            definitions[f.name] = (types[f.name] | None, info)
        else:
            definitions[f.name] = (types[f.name], Field(f.default, description=help_text, **bounds))
    return definitions


class SpeechTarget(BaseModel):
    """What to say and in which voice, with which model."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="Text to speak.")
    voice: str | None = Field(default=None, description="Voice id or name from /v1/voices.")
    ref_name: str | None = Field(
        default=None, description="A clip of the voices directory, e.g. 'sample/narrator.wav'."
    )
    ref_audio: str | None = Field(
        default=None, description="Reference clip, base64 (any audio format)."
    )
    ref_text: str | None = Field(default=None, description="Transcript of ref_audio.")
    language: str = Field(default="auto", description="ISO 639-1 code of the text, or 'auto'.")
    script: bool = Field(
        default=False,
        description="The text is a script, '[narrator] ... [alice] ...': each line in the "
        "library voice named before it (text before the first tag: this request's voice), "
        "joined with speaker_pause.",
    )
    model: str | None = Field(default=None, description="Model name (default: routed by language).")
    pronunciations: dict[str, str] | None = Field(
        default=None,
        description="{word or /pattern/: replacement} applied before normalisation, after the "
        "server's and the voice's; for Chinese the replacement may be pinyin in braces, "
        "'{chong2 qing4}'.",
    )


if TYPE_CHECKING:
    _WithOptions = SpeechTarget
else:
    _WithOptions = create_model(
        "SpeechOptions", __base__=SpeechTarget, **option_field_definitions()
    )


class SpeechParams(_WithOptions):
    """Text, voice, model and synthesis options (the body of /v1/tts, /v1/jobs and RunPod)."""

    remove_silence: bool = Field(
        default=False, description="Shorten pauses over 1 s in the output."
    )

    def speech_body(self) -> dict[str, Any]:
        """The fields that define the audio (what a job stores and compares for idempotency)."""
        body = self.model_dump(include=set(SpeechParams.model_fields))
        return {k: v for k, v in body.items() if v is not None or k in EXPLICIT_NONE}


def same_speech(stored: dict[str, Any], given: dict[str, Any]) -> bool:
    """Whether two speech bodies ask for the same audio: equal once parsed, so a body stored
    before an option existed equals today's body that leaves that option at its default."""
    return bool(
        SpeechParams.model_validate(stored).speech_body()
        == SpeechParams.model_validate(given).speech_body()
    )


# Options for which None is a choice of its own (sway_sampling_coef: no sway), not "unset".
EXPLICIT_NONE = frozenset(
    f.name for f in option_fields() if nullable(f.name) and f.default is not None
)
M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], raw: dict[str, Any]) -> M:
    """Validate ``raw`` as ``model``; pydantic's complaint becomes one of our errors."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(list(exc.errors())) from None


def validation_error(errors: list[Any]) -> F5ServeError:
    """A pydantic error list as one of our errors (first problem in the message)."""
    types = {e.get("type") for e in errors}
    if "json_invalid" in types:
        return BadRequest("the request body is not valid JSON", details={"errors": _clean(errors)})
    if "model_attributes_type" in types:  # valid JSON, but an array, a string, a number...
        return BadRequest(
            "the request body must be a JSON object", details={"errors": _clean(errors)}
        )
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = f"{where}: {first.get('msg', 'invalid value')}" if where else first.get("msg", "")
    return InvalidInput(message or "invalid request", details={"errors": _clean(errors)})


def _clean(errors: list[Any]) -> list[dict[str, Any]]:
    """Only JSON-safe parts of pydantic errors (never the input, which may be megabytes)."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": e.get("type")}
        for e in errors
    ]
