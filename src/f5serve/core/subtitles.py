"""Subtitles of synthesised speech: its chunk segments as SubRip (``srt``) or WebVTT (``vtt``).

A segment is one chunk's text with when it is spoken (measured from the chunk audio and the
cross-fade). Word-level cues exist only where the words were timed by speech recognition
(``word_timestamps``): one cue per word heard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast

import srt
import webvtt

from f5serve.engine.asr import Attempt, Word
from f5serve.engine.pipeline import Segment
from f5serve.errors import InvalidInput

SubtitleFormat = Literal["srt", "vtt"]
CONTENT_TYPES: dict[str, str] = {"srt": "application/x-subrip", "vtt": "text/vtt"}


def subtitle_format(path: Path) -> SubtitleFormat:
    """The subtitle format a file name asks for (``.srt`` or ``.vtt``)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in CONTENT_TYPES:
        raise InvalidInput(f"subtitles go in a .srt or .vtt file, not {path.name!r}")
    return cast(SubtitleFormat, suffix)


def segment_dicts(segments: Iterable[Segment]) -> list[dict[str, Any]]:
    """``[{text, start, end}]``: segments as JSON responses and job results carry them (with
    ``attempts``, ``[{seed, cer, heard}]``, under the quality check, and ``words``,
    ``[{word, start, end}]``, with word timestamps)."""
    return [segment_dict(s.text, s.start, s.end, s.attempts, s.words) for s in segments]


def segment_dict(
    text: str,
    start: float,
    end: float,
    attempts: Iterable[Attempt] = (),
    words: Iterable[Word] = (),
) -> dict[str, Any]:
    """One segment as :func:`segment_dicts` writes it."""
    extra = {
        "attempts": [dataclasses.asdict(a) for a in attempts],
        "words": [dataclasses.asdict(w) for w in words],
    }
    return {"text": text, "start": start, "end": end, **{k: v for k, v in extra.items() if v}}


def word_cues(segments: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The timed words of ``segments`` as cues ``{text, start, end}`` (words not heard have
    no cue); :class:`InvalidInput` if the segments have no words (not timed)."""
    segments = list(segments)
    if not any(s.get("words") for s in segments):
        raise InvalidInput(
            "word-level subtitles need word timestamps: synthesise with word_timestamps"
        )
    return [
        {"text": w["word"], "start": w["start"], "end": w["end"]}
        for s in segments
        for w in s.get("words", [])
        if w["start"] is not None
    ]


def render_subtitles(
    segments: Iterable[Mapping[str, Any]], fmt: SubtitleFormat, words: bool = False
) -> str:
    """Segments (:func:`segment_dicts`) as the text of a subtitle file: a cue per segment,
    or with ``words`` a cue per timed word (:func:`word_cues`)."""
    cues = word_cues(segments) if words else list(segments)
    if fmt == "srt":
        return str(
            srt.compose(
                [
                    srt.Subtitle(i, _delta(c["start"]), _delta(c["end"]), c["text"])
                    for i, c in enumerate(cues, 1)
                ]
            )
        )
    vtt = webvtt.WebVTT()
    for c in cues:
        vtt.captions.append(webvtt.Caption(_clock(c["start"]), _clock(c["end"]), c["text"]))
    return str(vtt.content)


def _delta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _clock(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
