"""Reference audio is decoded with a bound: a long clip is refused by the duration its header
declares, and a clip whose header says nothing is decoded only up to the limit."""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

from f5serve.engine import audio
from f5serve.engine.audio import load_audio
from f5serve.errors import PayloadTooLarge

SR = 8000
LIMIT = 12.0


def silent_flac(minutes: float) -> bytes:
    """``minutes`` of digital silence as FLAC: a few KB however long it is."""
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(minutes * 60 * SR), dtype=np.int16), SR, format="FLAC")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = silent_flac(20)
    assert len(data) < 200_000  # 20 minutes in a small upload
    return data


def count_frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Spy on every decoder: the frames each soundfile read and each PyAV frame produced."""
    decoded: list[int] = []
    read = sf.SoundFile.read

    def spy_read(self: sf.SoundFile, *args: Any, **kwargs: Any) -> Any:
        out = read(self, *args, **kwargs)
        decoded.append(len(out))
        return out

    frames = audio._pyav_frames

    def spy_frames(*args: Any, **kwargs: Any) -> list[np.ndarray]:
        chunks = frames(*args, **kwargs)
        decoded.append(sum(c.shape[1] for c in chunks))
        return chunks

    monkeypatch.setattr(sf.SoundFile, "read", spy_read)
    monkeypatch.setattr(audio, "_pyav_frames", spy_frames)
    return decoded


def test_declared_duration_refused_before_decoding(
    bomb: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = count_frames(monkeypatch)
    with pytest.raises(PayloadTooLarge) as caught:
        load_audio(bomb, max_seconds=LIMIT)
    assert caught.value.details["seconds"] == pytest.approx(1200)
    assert decoded == []  # nothing decoded at all


def undeclared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers that declare no duration (as a streamed or forged file can)."""
    monkeypatch.setattr(sf.SoundFile, "frames", property(lambda self: 0))
    monkeypatch.setattr(audio, "_declared_seconds", lambda container, stream: 0.0)


@pytest.mark.parametrize("decoder", ["soundfile", "pyav"])
def test_undeclared_duration_decodes_only_up_to_the_limit(
    decoder: str, bomb: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    undeclared(monkeypatch)
    if decoder == "pyav":
        monkeypatch.setattr(audio, "_decode_soundfile", lambda data, limit: audio._Attempt())
    decoded = count_frames(monkeypatch)
    with pytest.raises(PayloadTooLarge):
        load_audio(bomb, max_seconds=LIMIT)
    assert decoded and sum(decoded) <= (LIMIT + 1) * SR  # not 20 minutes


def test_a_clip_within_the_limit_decodes_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    undeclared(monkeypatch)
    samples, sr = load_audio(silent_flac(10 / 60), max_seconds=LIMIT)
    assert sr == SR and len(samples) == 10 * SR


def test_pyav_declared_duration_is_read(bomb: bytes) -> None:
    with av.open(io.BytesIO(bomb)) as container:
        seconds = audio._declared_seconds(container, container.streams.audio[0])
    assert seconds == pytest.approx(1200)
