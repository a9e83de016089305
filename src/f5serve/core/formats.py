"""Audio formats seen from the core: their names as one type (the doors' schemas use it), the
format job outputs are stored in, and turning stored or synthesised audio into the format a
client asked for. The table of formats is :data:`f5serve.engine.audio_codecs.FORMATS`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from f5serve.core.storage.base import Storage
from f5serve.core.synthesis import Speech
from f5serve.engine.audio import FORMATS, encode_audio, load_audio

if TYPE_CHECKING:
    FormatName = str
else:  # Literal["wav", "flac", ...]: one value per entry of the table
    FormatName = Literal[tuple(FORMATS)]

OUTPUT_FORMAT = "wav"  # what job outputs are stored as; downloads in other formats are transcoded


def read_output(storage: Storage, key: str, fmt: str) -> bytes:
    """The job output stored (as WAV) at ``key``, in format ``fmt``: the stored bytes themselves
    when ``fmt`` is WAV. Blocking (storage and encoder): call it off the event loop."""
    stored = storage.get(key)
    if fmt == OUTPUT_FORMAT:
        return stored
    audio, sample_rate = load_audio(stored)
    return encode_audio(audio, sample_rate, fmt)


async def encode_speech(speech: Speech, fmt: str) -> bytes:
    """Synthesised audio in format ``fmt``, encoded off the event loop (mp3/aac take a while)."""
    return await asyncio.to_thread(encode_audio, speech.audio, speech.sample_rate, fmt)
