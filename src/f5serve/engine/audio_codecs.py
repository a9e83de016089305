"""Audio out: encode mono float audio as WAV, FLAC, MP3, Ogg Opus, AAC (ADTS or M4A) or raw PCM.

Formats follow the OpenAI speech API (``response_format``): ``wav`` and ``flac`` are 16-bit PCM
(soundfile); ``pcm`` is headerless signed 16-bit little-endian; ``mp3``, ``opus``, ``aac`` go
through PyAV (libmp3lame, libopus, FFmpeg's AAC encoder). ``opus`` and ``ogg`` are the same thing,
Opus in an Ogg container; ``aac`` is an ADTS stream (what OpenAI returns), ``m4a`` is AAC in an
MP4 container. Samples are clipped to [-1, 1] and scaled by 32767 before integer conversion.

A sample rate that a lossy encoder does not support is resampled to 48 kHz first; 24 kHz is native
to all of them (for Opus the decoder still reports 48 kHz: Opus always decodes at 48 kHz).
:data:`FORMATS` is the one table of formats (name, content type, file extensions, encoder,
streamable or not): the API's format fields, the CLI's output extensions and the content types of
answers all come from it. This module does not import :mod:`f5serve.engine.audio` (which
re-exports it).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

from f5serve.errors import InvalidInput

FALLBACK_RATE = 48000

Encoder = Callable[[np.ndarray, int], bytes]  # (clean mono float32 samples, sample rate) -> bytes


@dataclass(frozen=True)
class OutputFormat:
    """One audio format the service answers in: one entry of :data:`FORMATS`."""

    name: str  # the API's value (response_format, ?format=) and the CLI's
    content_type: str  # the Content-Type of an answer in this format
    extensions: tuple[str, ...]  # file name endings read as this format; the first names files
    encoder: Encoder
    streamable: bool = False  # pieces encoded one by one and concatenated are valid audio

    def file_name(self, stem: str) -> str:
        """``stem`` with this format's extension (``job-1`` → ``job-1.wav``)."""
        return stem + self.extensions[0]


def output_format(name: str) -> OutputFormat:
    """The entry of :data:`FORMATS` for ``name`` (case-insensitive); InvalidInput if unknown."""
    fmt = FORMATS.get(name.lower())
    if fmt is None:
        raise InvalidInput(
            f"unknown audio format {name.lower()!r}; use one of: {', '.join(FORMATS)}",
            details={"format": name.lower(), "supported_formats": list(FORMATS)},
        )
    return fmt


def format_from_path(path: str | Path) -> str:
    """The output format for a file name, from its extension (case-insensitive)."""
    suffix = Path(path).suffix.lower()
    by_extension = {ext: fmt.name for fmt in FORMATS.values() for ext in fmt.extensions}
    if suffix not in by_extension:
        supported = ", ".join(by_extension)
        shown = suffix or "no extension"
        raise InvalidInput(
            f"cannot tell the audio format of {path} ({shown}); use one of: {supported}",
            details={"path": str(path), "supported_extensions": list(by_extension)},
        )
    return by_extension[suffix]


def encode_audio(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode mono float audio (``[samples]``, nominally in [-1, 1]) in format ``fmt``."""
    encoder = output_format(fmt).encoder
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    return encoder(_clean_samples(audio), sample_rate)


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


def _encode_pcm(samples: np.ndarray, sample_rate: int) -> bytes:
    return to_pcm16(samples).tobytes()


def _soundfile(container: str) -> Encoder:
    """16-bit PCM in a soundfile container (``WAV``, ``FLAC``)."""

    def encode(samples: np.ndarray, sample_rate: int) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, to_pcm16(samples), sample_rate, format=container, subtype="PCM_16")
        return buffer.getvalue()

    return encode


def _pyav(container: str, codec: str, bit_rate: int) -> Encoder:
    """A lossy codec in a container, through PyAV (FFmpeg)."""

    def encode(samples: np.ndarray, sample_rate: int) -> bytes:
        rates = av.codec.Codec(codec, "w").audio_rates
        rate = sample_rate if not rates or sample_rate in rates else FALLBACK_RATE
        if rate != sample_rate and len(samples):
            samples = soxr.resample(samples, sample_rate, rate, quality="VHQ").astype(np.float32)
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format=container) as out:
            stream = out.add_stream(codec, rate=rate, layout="mono")
            stream.bit_rate = bit_rate
            if len(samples):
                frame = av.AudioFrame.from_ndarray(
                    samples[np.newaxis, :], format="fltp", layout="mono"
                )
                frame.sample_rate = rate
                frame.pts = 0
                frame.time_base = Fraction(1, rate)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        return buffer.getvalue()

    return encode


_OPUS = _pyav("ogg", "libopus", 48_000)

FORMATS: dict[str, OutputFormat] = {
    fmt.name: fmt
    for fmt in (
        OutputFormat("wav", "audio/wav", (".wav", ".wave"), _soundfile("WAV")),
        OutputFormat("flac", "audio/flac", (".flac",), _soundfile("FLAC")),
        OutputFormat("mp3", "audio/mpeg", (".mp3",), _pyav("mp3", "libmp3lame", 128_000)),
        OutputFormat("opus", "audio/ogg", (".opus",), _OPUS),
        OutputFormat("ogg", "audio/ogg", (".ogg",), _OPUS),
        OutputFormat("aac", "audio/aac", (".aac",), _pyav("adts", "aac", 96_000)),
        OutputFormat("m4a", "audio/mp4", (".m4a",), _pyav("ipod", "aac", 96_000)),
        OutputFormat("pcm", "audio/pcm", (".pcm", ".raw"), _encode_pcm, streamable=True),
    )
}
"""Every output format, by name: adding a format is one entry here."""
