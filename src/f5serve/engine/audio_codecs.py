"""Audio out: encode mono float audio as WAV, FLAC, MP3, Ogg Opus, AAC (ADTS or M4A) or raw PCM.

Formats follow the OpenAI speech API (``response_format``): ``wav`` and ``flac`` are 16-bit PCM
(soundfile); ``pcm`` is headerless signed 16-bit little-endian; ``mp3``, ``opus``, ``aac`` go
through PyAV (libmp3lame, libopus, FFmpeg's AAC encoder). ``opus`` and ``ogg`` are the same thing,
Opus in an Ogg container; ``aac`` is an ADTS stream (what OpenAI returns), ``m4a`` is AAC in an
MP4 container. Samples are clipped to [-1, 1] and scaled by 32767 before integer conversion.

A sample rate that a lossy encoder does not support is resampled to 48 kHz first; 24 kHz is native
to all of them (for Opus the decoder still reports 48 kHz: Opus always decodes at 48 kHz).
:data:`FORMATS` is the one table of formats (name, content type, file extensions, encoder,
streaming encoder or none): the API's format fields, the CLI's output extensions and the content
types of answers all come from it.

Streaming (:func:`open_stream`): ``pcm``, ``wav``, ``mp3``, ``opus``/``ogg`` and ``aac`` have an
encoder that stays open across pieces of audio and hands back the bytes that are ready after
each piece; their concatenation is one valid file. A streamed WAV has 0xFFFFFFFF as its RIFF and
data sizes (its length is not known when the header is sent; decoders read to the end); a
streamed MP3 has no Xing/LAME header (it is written last, by seeking back, which a stream
cannot do), so decoders do not trim the encoder's priming samples. ``flac`` and ``m4a`` are
encoded whole (their headers need the total length). This module does not import
:mod:`f5serve.engine.audio` (which re-exports it).
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, cast

import av
import numpy as np
import soundfile as sf
import soxr
from av.audio.stream import AudioStream

from f5serve.errors import InvalidInput

FALLBACK_RATE = 48000

Encoder = Callable[[np.ndarray, int], bytes]  # (clean mono float32 samples, sample rate) -> bytes
OGG_PAGE_MICROSECONDS = 100_000  # a streamed Ogg page holds at most this much audio


class StreamEncoder(Protocol):
    """An encoder kept open across pieces of audio (see :func:`open_stream`)."""

    def write(self, samples: np.ndarray) -> bytes:
        """Encode the next piece (clean mono float32); the bytes ready to send (maybe none)."""

    def close(self) -> bytes:
        """Flush the encoder: the last bytes of the file."""


Streamer = Callable[[int], StreamEncoder]  # sample rate -> an open stream encoder


@dataclass(frozen=True)
class OutputFormat:
    """One audio format the service answers in: one entry of :data:`FORMATS`."""

    name: str  # the API's value (response_format, ?format=) and the CLI's
    content_type: str  # the Content-Type of an answer in this format
    extensions: tuple[str, ...]  # file name endings read as this format; the first names files
    encoder: Encoder
    streamer: Streamer | None = None  # opens an encoder that streams, if the format can

    @property
    def streamable(self) -> bool:
        """Whether audio in this format can be sent piece by piece as it is made."""
        return self.streamer is not None

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


def open_stream(fmt: str, sample_rate: int) -> StreamEncoder:
    """A :class:`StreamEncoder` for format ``fmt`` (InvalidInput if it cannot stream)."""
    streamer = output_format(fmt).streamer
    if streamer is None:
        streamable = [name for name, f in FORMATS.items() if f.streamable]
        raise InvalidInput(
            f"audio in {fmt.lower()!r} cannot be streamed; use one of: {', '.join(streamable)}",
            details={"format": fmt.lower(), "streamable_formats": streamable},
        )
    return _Cleaning(streamer(sample_rate))


@dataclass
class _Cleaning:
    """Cleans each piece (as :func:`encode_audio` does) before the format's stream encoder."""

    inner: StreamEncoder

    def write(self, samples: np.ndarray) -> bytes:
        return self.inner.write(_clean_samples(samples))

    def close(self) -> bytes:
        return self.inner.close()


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


class _PcmStream:
    """Raw PCM: each piece on its own."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def write(self, samples: np.ndarray) -> bytes:
        return _encode_pcm(samples, self.sample_rate)

    def close(self) -> bytes:
        return b""


class _WavStream(_PcmStream):
    """16-bit WAV whose header, sent first, has unknown (0xFFFFFFFF) RIFF and data sizes."""

    UNKNOWN = 0xFFFFFFFF

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.header: bytes | None = wav_stream_header(sample_rate)

    def write(self, samples: np.ndarray) -> bytes:
        header, self.header = self.header or b"", None
        return header + super().write(samples)

    def close(self) -> bytes:
        return self.write(np.zeros(0, dtype=np.float32))  # the header alone if nothing was sent


def wav_stream_header(sample_rate: int) -> bytes:
    """The 44-byte header of a mono 16-bit WAV of unknown length."""
    unknown = _WavStream.UNKNOWN
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVE"
        + b"fmt "
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


def _soundfile(container: str) -> Encoder:
    """16-bit PCM in a soundfile container (``WAV``, ``FLAC``)."""

    def encode(samples: np.ndarray, sample_rate: int) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, to_pcm16(samples), sample_rate, format=container, subtype="PCM_16")
        return buffer.getvalue()

    return encode


class _Drain:
    """A write-only, unseekable file that hands over what was written since the last call."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class _PyAVEncoder:
    """One container with one mono audio stream, written to ``file`` piece by piece."""

    def __init__(
        self,
        file: io.BytesIO | _Drain,
        codec: tuple[str, str, int],  # container, codec, bit rate
        sample_rate: int,
        options: dict[str, str] | None = None,
    ) -> None:
        container, name, bit_rate = codec
        rates = av.codec.Codec(name, "w").audio_rates
        self.rate = sample_rate if not rates or sample_rate in rates else FALLBACK_RATE
        self.resampler = (
            None
            if self.rate == sample_rate
            else soxr.ResampleStream(sample_rate, self.rate, 1, dtype="float32", quality="VHQ")
        )
        self.out = av.open(file, mode="w", format=container, options=options or {})
        self.stream = cast(AudioStream, self.out.add_stream(name, rate=self.rate, layout="mono"))
        self.stream.bit_rate = bit_rate
        self.pts = 0

    def encode(self, samples: np.ndarray, last: bool = False) -> None:
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples, last=last)
        if len(samples):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples, dtype=np.float32)[np.newaxis, :],
                format="fltp",
                layout="mono",
            )
            frame.sample_rate = self.rate
            frame.pts = self.pts
            frame.time_base = Fraction(1, self.rate)
            self.pts += len(samples)
            self.out.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.encode(np.zeros(0, dtype=np.float32), last=True)
        self.out.mux(self.stream.encode(None))
        self.out.close()


def _pyav(codec: tuple[str, str, int]) -> Encoder:
    """A lossy codec in a container, through PyAV (FFmpeg), written whole."""

    def encode(samples: np.ndarray, sample_rate: int) -> bytes:
        buffer = io.BytesIO()
        encoder = _PyAVEncoder(buffer, codec, sample_rate)
        encoder.encode(samples)
        encoder.close()
        return buffer.getvalue()

    return encode


class _PyAVStream:
    """A lossy codec whose container is written to an unseekable stream, drained per piece."""

    def __init__(self, codec: tuple[str, str, int], sample_rate: int) -> None:
        self.drain = _Drain()
        options = {"page_duration": str(OGG_PAGE_MICROSECONDS)} if codec[0] == "ogg" else None
        self.encoder = _PyAVEncoder(self.drain, codec, sample_rate, options)

    def write(self, samples: np.ndarray) -> bytes:
        self.encoder.encode(samples)
        return self.drain.take()

    def close(self) -> bytes:
        self.encoder.close()
        return self.drain.take()


def _pyav_stream(codec: tuple[str, str, int]) -> Streamer:
    return functools.partial(_PyAVStream, codec)


_MP3 = ("mp3", "libmp3lame", 128_000)
_OPUS = ("ogg", "libopus", 48_000)
_AAC = ("adts", "aac", 96_000)

FORMATS: dict[str, OutputFormat] = {
    fmt.name: fmt
    for fmt in (
        OutputFormat("wav", "audio/wav", (".wav", ".wave"), _soundfile("WAV"), _WavStream),
        OutputFormat("flac", "audio/flac", (".flac",), _soundfile("FLAC")),
        OutputFormat("mp3", "audio/mpeg", (".mp3",), _pyav(_MP3), _pyav_stream(_MP3)),
        OutputFormat("opus", "audio/ogg", (".opus",), _pyav(_OPUS), _pyav_stream(_OPUS)),
        OutputFormat("ogg", "audio/ogg", (".ogg",), _pyav(_OPUS), _pyav_stream(_OPUS)),
        OutputFormat("aac", "audio/aac", (".aac",), _pyav(_AAC), _pyav_stream(_AAC)),
        OutputFormat("m4a", "audio/mp4", (".m4a",), _pyav(("ipod", "aac", 96_000))),
        OutputFormat("pcm", "audio/pcm", (".pcm", ".raw"), _encode_pcm, _PcmStream),
    )
}
"""Every output format, by name: adding a format is one entry here."""
