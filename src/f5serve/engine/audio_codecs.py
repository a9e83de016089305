"""Audio out: encode mono float audio as WAV, FLAC, MP3, Ogg Opus, AAC (ADTS or M4A) or raw PCM.

Formats follow the OpenAI speech API (``response_format``): ``wav`` and ``flac`` are 16-bit PCM
(soundfile); ``pcm`` is headerless signed 16-bit little-endian; ``mp3``, ``opus``, ``aac`` go
through PyAV (libmp3lame, libopus, FFmpeg's AAC encoder). ``opus`` and ``ogg`` are the same thing,
Opus in an Ogg container; ``aac`` is an ADTS stream (what OpenAI returns), ``m4a`` is AAC in an
MP4 container. Samples are clipped to [-1, 1] and scaled by 32767 before integer conversion.

A sample rate that a lossy encoder does not support is resampled to 48 kHz first; 24 kHz is native
to all of them (for Opus the decoder still reports 48 kHz: Opus always decodes at 48 kHz).
This module does not import :mod:`f5serve.engine.audio` (which re-exports it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

from f5serve.errors import InvalidInput

FORMATS = ("wav", "flac", "mp3", "opus", "ogg", "aac", "m4a", "pcm")

CONTENT_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    "pcm": "audio/pcm",
}

EXTENSIONS: dict[str, str] = {
    ".wav": "wav",
    ".wave": "wav",
    ".flac": "flac",
    ".mp3": "mp3",
    ".opus": "opus",
    ".ogg": "ogg",
    ".aac": "aac",
    ".m4a": "m4a",
    ".pcm": "pcm",
    ".raw": "pcm",
}

FALLBACK_RATE = 48000


@dataclass(frozen=True)
class _LossySpec:
    container: str
    codec: str
    bit_rate: int


_LOSSY: dict[str, _LossySpec] = {
    "mp3": _LossySpec("mp3", "libmp3lame", 128_000),
    "opus": _LossySpec("ogg", "libopus", 48_000),
    "ogg": _LossySpec("ogg", "libopus", 48_000),
    "aac": _LossySpec("adts", "aac", 96_000),
    "m4a": _LossySpec("ipod", "aac", 96_000),
}


def format_from_path(path: str | Path) -> str:
    """The output format for a file name, from its extension (case-insensitive)."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        supported = ", ".join(EXTENSIONS)
        shown = suffix or "no extension"
        raise InvalidInput(
            f"cannot tell the audio format of {path} ({shown}); use one of: {supported}",
            details={"path": str(path), "supported_extensions": list(EXTENSIONS)},
        )
    return EXTENSIONS[suffix]


def encode_audio(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode mono float audio (``[samples]``, nominally in [-1, 1]) in format ``fmt``."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise InvalidInput(
            f"unknown audio format {fmt!r}; use one of: {', '.join(FORMATS)}",
            details={"format": fmt, "supported_formats": list(FORMATS)},
        )
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    samples = _clean_samples(audio)
    if fmt == "pcm":
        return to_pcm16(samples).tobytes()
    if fmt in ("wav", "flac"):
        return _encode_soundfile(samples, sample_rate, fmt)
    return _encode_pyav(samples, sample_rate, _LOSSY[fmt])


def _clean_samples(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono [samples] audio, got shape {samples.shape}")
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Little-endian int16 samples: clip to [-1, 1], scale by 32767, round to nearest."""
    clipped = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    return np.round(clipped * 32767.0).astype("<i2")


def _encode_soundfile(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16(samples), sample_rate, format=fmt.upper(), subtype="PCM_16")
    return buffer.getvalue()


def _encode_pyav(samples: np.ndarray, sample_rate: int, spec: _LossySpec) -> bytes:
    rates = av.codec.Codec(spec.codec, "w").audio_rates
    rate = sample_rate if not rates or sample_rate in rates else FALLBACK_RATE
    if rate != sample_rate and len(samples):
        samples = soxr.resample(samples, sample_rate, rate, quality="VHQ").astype(np.float32)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=spec.container) as container:
        stream = container.add_stream(spec.codec, rate=rate, layout="mono")
        stream.bit_rate = spec.bit_rate
        if len(samples):
            frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = 0
            frame.time_base = Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
