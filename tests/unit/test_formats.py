"""The core's view of audio formats: the type the doors' schemas use, and reading a stored job
output in the format a client asks for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from f5serve.core.formats import OUTPUT_FORMAT, FormatName, read_output
from f5serve.core.storage import LocalStorage
from f5serve.engine.audio import FORMATS, SAMPLE_RATE, encode_audio, load_audio
from f5serve.errors import NotFound

EN_WAV = Path(__file__).resolve().parent.parent / "fixtures" / "basic_ref_en.wav"


def test_the_format_type_accepts_exactly_the_formats_of_the_table() -> None:
    adapter = TypeAdapter(FormatName)
    assert adapter.json_schema()["enum"] == list(FORMATS)
    assert adapter.validate_python("opus") == "opus"
    with pytest.raises(ValidationError):
        adapter.validate_python("wma")


def test_read_output_gives_the_stored_wav_or_transcodes_it(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    audio, sr = load_audio(EN_WAV)
    stored = encode_audio(audio, sr, OUTPUT_FORMAT)
    storage.put("output/a.wav", stored, FORMATS[OUTPUT_FORMAT].content_type)
    assert read_output(storage, "output/a.wav", "wav") == stored
    flac, flac_sr = load_audio(read_output(storage, "output/a.wav", "flac"))
    assert flac_sr == SAMPLE_RATE
    np.testing.assert_allclose(flac, load_audio(stored)[0], atol=2 / 32768)  # lossless, 16 bit
    mp3, _ = load_audio(read_output(storage, "output/a.wav", "mp3"))
    assert abs(len(mp3) - len(audio)) < 0.05 * SAMPLE_RATE
    with pytest.raises(NotFound):
        read_output(storage, "output/missing.wav", "mp3")
