"""Synthesis options: one frozen dataclass, the single source of each option's default, range
and help text.

Every door derives from it: the HTTP and RunPod request schemas (``f5serve.core.params``), the
multipart form of ``/v1/tts/upload``, the ``f5serve synth`` flags and the service's defaults.
Adding an option is one field here plus the engine code that uses it.
"""

from __future__ import annotations

import dataclasses
import operator
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from f5serve.errors import InvalidInput

COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def option(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    unit: str = "",
    reference: bool = False,
) -> Any:
    """A field of :class:`SynthesisOptions`: its default, its bounds (pydantic's names), the
    unit named in range errors, and whether it shapes the prepared reference (so a cached
    reference depends on it)."""
    bounds = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt}.items() if v is not None}
    return field(
        default=default,
        metadata={"help": help, "bounds": bounds, "unit": unit, "reference": reference},
    )


@dataclass(frozen=True, kw_only=True)
class SynthesisOptions:
    """How to synthesise; the defaults are upstream F5-TTS's.

    Merge overrides with :meth:`merged` (or :func:`dataclasses.replace`); check with
    :meth:`validate`.
    """

    speed: float = option(1.0, "Speaking rate.", ge=0.25, le=4.0)
    nfe_steps: int = option(32, "Flow steps.", ge=1, le=128)
    cfg_strength: float = option(2.0, "Classifier-free guidance.", ge=0, le=20)
    sway_sampling_coef: float | None = option(-1.0, "Time-grid sway.", ge=-2, le=2)
    seed: int | None = option(None, "Random seed (random if unset).", ge=0, lt=2**63)
    cross_fade: float = option(0.15, "Seconds of cross-fade.", ge=0, le=2, unit="seconds")
    fix_duration: float | None = option(
        None,
        "Total seconds (reference + output) of every chunk (default: estimated from the text).",
        gt=0,
        le=60,
        unit="seconds",
    )
    first_chunk_seconds: float | None = option(
        None,
        "Make the first chunk at most about this many seconds of speech (at the reference's "
        "speaking rate; a clause longer than that stays whole), so that a stream's first audio "
        "comes sooner; the rest is chunked as usual (default: the reference's chunking).",
        gt=0,
        le=20,
        unit="seconds",
    )
    target_rms: float = option(
        0.1,
        "Loudness (RMS) a quieter reference is raised to before sampling; the output is scaled "
        "back to the reference's own loudness.",
        gt=0,
        le=1,
        reference=True,
    )
    preprocess_ref: bool = option(
        True,
        "Clip the reference clip to 12 s and trim its edge silence "
        "(library voices were cleaned when added).",
        reference=True,
    )

    speaker_pause: float = option(
        0.4,
        "Seconds of silence between the turns of a multi-speaker script.",
        ge=0,
        le=10,
        unit="seconds",
    )
    normalize: bool = option(
        True,
        "Write numbers, dates, times, money, percentages, units and abbreviations out as words "
        "before chunking (false: the text as given, exact reference parity).",
    )
    quality_check: bool = option(
        False,
        "Transcribe each synthesised chunk (speech recognition, f5serve[asr]) and synthesise it "
        "again with the next seed while its character error rate is over cer_threshold, at "
        "most max_tries times; each try is reported with the chunk's segment.",
    )
    max_tries: int = option(
        3, "Tries of a chunk under quality_check, the first included.", ge=1, le=10
    )
    cer_threshold: float = option(
        0.2,
        "Character error rate over which quality_check tries a chunk again (0: the "
        "transcript must match exactly).",
        ge=0,
        le=1,
    )

    def validate(self) -> None:
        """Raise :class:`InvalidInput` naming the first option outside its range."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or isinstance(value, bool):
                continue
            bounds = f.metadata["bounds"]
            if not all(COMPARE[op](value, limit) for op, limit in bounds.items()):
                raise InvalidInput(f"{f.name} must be {describe_range(f)}")

    def merged(self, overrides: Mapping[str, Any]) -> SynthesisOptions:
        """These options with ``overrides`` applied (unknown names are a :class:`TypeError`,
        as for the constructor)."""
        return dataclasses.replace(self, **overrides) if overrides else self

    def updated_from(self, body: Mapping[str, Any]) -> SynthesisOptions:
        """These options with the option fields found in a request body applied; other keys
        are ignored, and ``None`` for an option that cannot be ``None`` means "not given"."""
        given = {
            f.name: body[f.name]
            for f in dataclasses.fields(self)
            if f.name in body and (body[f.name] is not None or nullable(f.name))
        }
        return self.merged(given)

    def reference_key(self) -> tuple[Any, ...]:
        """The values of the options that shape a prepared reference (a cache key part)."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if _shapes_ref(f))


def resolve(options: SynthesisOptions | None, overrides: Mapping[str, Any]) -> SynthesisOptions:
    """``options`` (default: the defaults) with ``overrides`` applied: what the ``options=`` and
    keyword arguments of ``synthesize`` mean together."""
    return (options or SynthesisOptions()).merged(overrides)


def option_fields() -> tuple[dataclasses.Field[Any], ...]:
    """The fields of :class:`SynthesisOptions`, in order."""
    return dataclasses.fields(SynthesisOptions)


def option_types() -> dict[str, Any]:
    """Each option's type (``float | None`` and so on), resolved."""
    return typing.get_type_hints(SynthesisOptions)


def nullable(name: str) -> bool:
    """Whether ``None`` is a meaningful value of option ``name`` (not just "not given")."""
    return type(None) in typing.get_args(option_types()[name])


def describe_range(f: dataclasses.Field[Any]) -> str:
    """``"between 0 and 2 seconds"``, ``"at least 0 and below 2**63"``: an option's range."""
    b = f.metadata["bounds"]
    if "ge" in b and "le" in b:
        text = f"between {b['ge']:g} and {b['le']:g}"
    else:
        words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
        text = " and ".join(f"{words[op]} {_number(limit)}" for op, limit in b.items())
    return f"{text} {f.metadata['unit']}".strip()


def _number(value: float) -> str:
    return "2**63" if value == 2**63 else f"{value:g}"


def _shapes_ref(f: dataclasses.Field[Any]) -> bool:
    return bool(f.metadata["reference"])
