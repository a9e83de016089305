"""Subtitles of synthesised speech: its chunk segments as SubRip (``srt``) or WebVTT (``vtt``).

A segment is one chunk's text with when it is spoken (measured from the chunk audio and the
cross-fade); there are no word-level times.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast

import srt
import webvtt

from f5serve.engine.asr import Attempt
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
    ``attempts``, ``[{seed, cer, heard}]``, under the quality check)."""
    return [segment_dict(s.text, s.start, s.end, s.attempts) for s in segments]


def segment_dict(
    text: str, start: float, end: float, attempts: Iterable[Attempt] = ()
) -> dict[str, Any]:
    """One segment as :func:`segment_dicts` writes it."""
    tries = [dataclasses.asdict(a) for a in attempts]
    return {"text": text, "start": start, "end": end, **({"attempts": tries} if tries else {})}


def render_subtitles(segments: Iterable[Mapping[str, Any]], fmt: SubtitleFormat) -> str:
    """Segments (:func:`segment_dicts`) as the text of a subtitle file."""
    if fmt == "srt":
        cues = [
            srt.Subtitle(i, _delta(s["start"]), _delta(s["end"]), s["text"])
            for i, s in enumerate(segments, 1)
        ]
        return str(srt.compose(cues))
    vtt = webvtt.WebVTT()
    for s in segments:
        vtt.captions.append(webvtt.Caption(_clock(s["start"]), _clock(s["end"]), s["text"]))
    return str(vtt.content)


def _delta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _clock(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
