"""Multi-speaker scripts: ``[narrator] Once upon a time. [alice] Hello!`` split into lines,
each spoken in its own voice, and the takes joined with a pause.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from f5serve.engine.asr import Recognizer
from f5serve.engine.mel import SAMPLE_RATE
from f5serve.engine.options import SynthesisOptions, resolve
from f5serve.engine.pipeline import (
    AudioSource,
    Engine,
    Reference,
    Segment,
    SynthesisResult,
    Timings,
)
from f5serve.engine.pronounce import Lexicon
from f5serve.errors import InvalidInput, InvalidText

Voice = Reference | tuple[AudioSource, str]
"""A voice of a script: a prepared reference, or a clip and its transcript."""

SPEAKER_TAG = re.compile(r"\[([A-Za-z0-9][A-Za-z0-9 ._-]{0,127})\]")
"""``[name]``: the voice of the text that follows, up to the next tag."""


@dataclass(frozen=True)
class Line:
    """One speaker's turn: ``speaker`` is None for text before the first tag (the default
    voice)."""

    speaker: str | None
    text: str


def parse_script(text: str) -> list[Line]:
    """The turns of a script, in order; turns with nothing to say are dropped
    (:class:`InvalidText` when none is left)."""
    parts = SPEAKER_TAG.split(text)
    lines = [Line(None, parts[0].strip())] + [
        Line(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts), 2)
    ]
    spoken = [line for line in lines if any(c.isalnum() for c in line.text)]
    if not spoken:
        raise InvalidText("the script has no line to speak", details={"field": "text"})
    return spoken


def speakers(lines: list[Line]) -> list[str | None]:
    """The distinct speakers of ``lines``, in order of first appearance."""
    return list(dict.fromkeys(line.speaker for line in lines))


@dataclass(frozen=True)
class Take:
    """The audio of one line and when its chunks are spoken in it."""

    audio: np.ndarray
    segments: list[Segment]


def pause_audio(seconds: float, sample_rate: int) -> np.ndarray:
    """``seconds`` of silence: the pause between two lines."""
    return np.zeros(round(seconds * sample_rate), dtype=np.float32)


def join_takes(takes: list[Take], pause: float, sample_rate: int) -> Take:
    """The takes one after another with ``pause`` seconds of silence between them; segment
    times are moved to where each take lands."""
    gap = pause_audio(pause, sample_rate)
    pieces: list[np.ndarray] = []
    segments: list[Segment] = []
    offset = 0
    for i, take in enumerate(takes):
        if i:
            pieces.append(gap)
            offset += len(gap)
        segments.extend(s.shifted(offset / sample_rate) for s in take.segments)
        pieces.append(take.audio.astype(np.float32))
        offset += len(take.audio)
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return Take(audio, [_rounded(s) for s in segments])


def check_script_voices(text: str, voices: Mapping[str | None, Any]) -> list[Line]:
    """The lines of a script whose every speaker is in ``voices`` (:class:`InvalidInput`
    naming those that are not)."""
    lines = parse_script(text)
    missing = [name or "(before the first tag)" for name in speakers(lines) if name not in voices]
    if missing:
        raise InvalidInput(f"the script names voices that were not given: {', '.join(missing)}")
    return lines


def synthesize_script(
    engine: Engine,
    text: str,
    voices: Mapping[str | None, Voice],
    *,
    options: SynthesisOptions | None = None,
    language: str | None = None,
    pronunciations: Mapping[str, str] | Lexicon | None = None,
    recognizer: Recognizer | None = None,
    **overrides: Any,
) -> SynthesisResult:
    """Speak a script with :meth:`Engine.synthesize`, each line in the voice its tag names
    (``voices[None]``: text before the first tag) with the same options and ``recognizer``
    (which transcribes a voice given without its transcript); the lines are joined
    with ``options.speaker_pause`` seconds of silence. A name missing from ``voices`` is
    :class:`InvalidInput` before anything is synthesised."""
    opts = resolve(options, overrides)
    lines = check_script_voices(text, voices)
    results = []
    for line in lines:
        voice = voices[line.speaker]
        ref, ref_text = (voice, "") if isinstance(voice, Reference) else voice
        results.append(
            engine.synthesize(
                line.text,
                ref,
                ref_text,
                options=opts,
                language=language,
                pronunciations=pronunciations,
                recognizer=recognizer,
            )
        )
    take = join_takes([Take(r.audio, r.segments) for r in results], opts.speaker_pause, SAMPLE_RATE)
    chunks = [chunk for r in results for chunk in r.chunks]
    total = Timings(total=sum(r.timings.total for r in results))
    return SynthesisResult(take.audio, SAMPLE_RATE, chunks, results[0].seed, total, take.segments)


def _rounded(s: Segment) -> Segment:
    return dataclasses.replace(s, start=round(s.start, 3), end=round(s.end, 3))
