"""Audio in: decoding, mono downmix, resampling, loudness, validation and reference clean-up.

The reference F5-TTS prepares a reference clip in this order, and so should callers::

    channels, sr = load_audio(source, mono=False)  # any rate, float32 [channels, samples]
    validate_reference(to_mono(channels), sr)      # NaN/inf, too short, silent
    audio = to_mono(clean_reference(channels, sr)) # ≤ 12 s, edges trimmed, silence appended
    audio, ref_rms = normalize_loudness(audio)     # RMS measured at the ORIGINAL rate ...
    audio = resample(audio, sr)                    # ... and only then resampled to 24 kHz
    ...
    wave = restore_loudness(generated, ref_rms)

:func:`prepare_reference` runs exactly that sequence. Cleaning after a mono downmix
(``load_audio(source)`` then ``clean_reference``) is the same for mono files; for stereo files the
cuts can differ from the reference's, which measures loudness over both channels together.
Output encoding lives in :mod:`f5serve.engine.audio_codecs` and is re-exported here.

The clean-up reproduces the reference (pydub) sample for sample on 16-bit input. The one
deliberate difference: the reference resamples with torchaudio's sinc filter, we use soxr (very
high quality), keeping torchaudio's output length ``ceil(n · to / from)``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import av
import numpy as np
import soundfile as sf
import soxr

from f5serve.engine import silence
from f5serve.engine.audio_codecs import (
    FORMATS,
    OutputFormat,
    encode_audio,
    format_from_path,
    output_format,
)
from f5serve.engine.mel import SAMPLE_RATE
from f5serve.errors import InvalidAudio, NotFound, PayloadTooLarge, UnsupportedMediaType

__all__ = [
    "FORMATS",
    "MAX_REFERENCE_SECONDS",
    "MIN_REFERENCE_SECONDS",
    "SAMPLE_RATE",
    "SILENCE_DBFS",
    "TARGET_RMS",
    "AudioSource",
    "OutputFormat",
    "PreparedReference",
    "clean_reference",
    "encode_audio",
    "format_from_path",
    "load_audio",
    "normalize_loudness",
    "output_format",
    "prepare_reference",
    "resample",
    "restore_loudness",
    "rms",
    "to_mono",
    "validate_reference",
]

TARGET_RMS = 0.1
MIN_REFERENCE_SECONDS = 0.3
MAX_REFERENCE_SECONDS = 12.0
SILENCE_DBFS = -60.0
"""A reference whose RMS is below this level (0.001 of full scale) is rejected as silent."""
MAX_CHANNELS = 64

AudioSource: TypeAlias = str | Path | bytes | bytearray | tuple[np.ndarray, int]

_SF_ERRORS = (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError, EOFError)
_AV_ERRORS = (av.FFmpegError, ValueError, RuntimeError, OSError, EOFError)
_AUDIO_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM", b"\x1a\x45\xdf\xa3", b"caff")


# --------------------------------------------------------------------------- decoding


def load_audio(
    source: AudioSource, *, mono: bool = True, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode ``source`` to ``(mono float32 samples, sample_rate)`` at its own rate.

    ``source`` is a path, the bytes of a file, or an in-memory ``(array, sample_rate)`` pair (see
    :func:`_from_array` for the accepted layouts). Files are identified by content, never by
    extension: soundfile first (exact for WAV/FLAC/OGG/MP3), then PyAV for anything FFmpeg reads
    (M4A/AAC, WebM/Opus, ...). Several channels are averaged (:func:`to_mono`); with
    ``mono=False`` the result is ``[channels, samples]`` instead (always 2-D), which is what
    :func:`clean_reference` needs to cut multichannel audio exactly where the reference does.

    With ``max_seconds``, a file longer than that is refused with :class:`PayloadTooLarge`
    without being decoded in full: first by the duration its header declares, then by stopping
    the decoder once it has produced more than ``max_seconds`` (a header can lie or say nothing,
    and a few KB of FLAC can hold hours of silence).

    A truncated file yields the part that decodes. Raises :class:`NotFound` for a missing path,
    :class:`UnsupportedMediaType` when the content is not audio, and :class:`InvalidAudio` when it
    looks like audio but nothing decodes (corrupt, empty).
    """
    if isinstance(source, tuple):
        channels, sr = _from_array(*source)
    else:
        channels, sr = _decode(source, max_seconds)
    if max_seconds is not None:
        _check_duration(channels.shape[-1] / sr, max_seconds)
    if not mono:
        return (channels if channels.ndim == 2 else channels[np.newaxis, :]), sr
    return to_mono(channels), sr


def _check_duration(seconds: float, max_seconds: float) -> None:
    """Refuse audio longer than ``max_seconds`` (413 :class:`PayloadTooLarge`)."""
    if seconds > max_seconds:
        raise PayloadTooLarge(
            f"reference audio is {seconds:.1f} s long (at most {max_seconds:g} s)",
            details={"seconds": round(seconds, 2), "max_seconds": max_seconds},
        )


def to_mono(audio: np.ndarray) -> np.ndarray:
    """float32 mono: a 1-D array is returned as is, a ``[channels, samples]`` one is averaged."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return np.ascontiguousarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        raise ValueError(f"expected [samples] or [channels, samples], got shape {audio.shape}")
    return np.ascontiguousarray(audio.mean(axis=0, dtype=np.float64), dtype=np.float32)


def _from_array(array: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Check an in-memory clip; return float32 ``[channels, samples]`` in [-1, 1] scale.

    Accepts a 1-D array, or a 2-D array in either layout: the shorter axis is taken as channels
    (``[channels, samples]`` as torch uses, or ``[samples, channels]`` as soundfile returns).
    Integer samples are scaled to [-1, 1] (int16 / 32768, int32 / 2³¹, uint8 centred on 128).
    """
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise InvalidAudio(f"sample rate must be a positive integer, got {sr!r}")
    if not isinstance(array, np.ndarray):
        raise InvalidAudio(f"audio must be a numpy array, got {type(array).__name__}")
    if array.ndim not in (1, 2):
        raise InvalidAudio(f"audio must be 1-D or 2-D [channels, samples], got shape {array.shape}")
    if array.ndim == 2 and array.shape[0] > array.shape[1]:
        array = array.T
    if array.ndim == 2 and array.shape[0] > MAX_CHANNELS:
        raise InvalidAudio(f"audio has {array.shape[0]} channels (at most {MAX_CHANNELS})")
    if array.size == 0:
        raise InvalidAudio("audio array is empty")
    return _to_float(array), int(sr)


def _to_float(array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float32)
    if kind == "i":
        scale = float(2 ** (8 * array.dtype.itemsize - 1))
        return (array.astype(np.float64) / scale).astype(np.float32)
    if kind == "u":
        offset = float(2 ** (8 * array.dtype.itemsize - 1))
        return ((array.astype(np.float64) - offset) / offset).astype(np.float32)
    raise InvalidAudio(f"audio samples must be integer or float, got dtype {array.dtype}")


@dataclass
class _Attempt:
    """One decoder's result: samples ``[channels, samples]`` (None if nothing decoded)."""

    audio: np.ndarray | None = None
    sr: int = 0
    status: str = "unknown"  # "unknown" (not parsed), "no_audio" (no audio stream), "audio"


def _decode(
    source: str | Path | bytes | bytearray, max_seconds: float | None
) -> tuple[np.ndarray, int]:
    name, data = _read_source(source)
    if not data:
        raise InvalidAudio(f"{name} is empty")
    attempts = []
    for decoder in (_decode_soundfile, _decode_pyav):
        attempt = decoder(data, max_seconds)
        attempts.append(attempt)
        if attempt.audio is not None and attempt.audio.shape[1] > 0:
            return attempt.audio, attempt.sr
    statuses = {attempt.status for attempt in attempts}
    if "audio" in statuses or ("no_audio" not in statuses and _looks_like_audio(data)):
        raise InvalidAudio(f"{name} looks like audio but no samples could be decoded (corrupt?)")
    raise UnsupportedMediaType(f"{name} is not an audio file we can decode")


def _looks_like_audio(data: bytes) -> bool:
    """Signatures of audio containers: a file that has one but does not parse is corrupt audio."""
    mpeg_sync = len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0
    return data.startswith(_AUDIO_MAGIC) or data[4:8] == b"ftyp" or mpeg_sync


def _read_source(source: str | Path | bytes | bytearray) -> tuple[str, bytes]:
    """A display name and the raw bytes. Reading the file ourselves keeps FFmpeg from ever
    interpreting a user-supplied string as a URL or protocol."""
    if isinstance(source, (bytes, bytearray)):
        return "the uploaded audio", bytes(source)
    path = Path(source)
    if not path.exists():
        raise NotFound(f"audio file not found: {path}", details={"path": str(path)})
    if not path.is_file():
        raise InvalidAudio(f"{path} is not a file", details={"path": str(path)})
    try:
        return str(path), path.read_bytes()
    except OSError as exc:
        raise InvalidAudio(f"cannot read {path}: {exc.strerror or exc}") from exc


def _frame_limit(sr: int, max_seconds: float | None) -> int:
    """How many frames a bounded decoder reads at most: one past the limit (-1: no limit)."""
    return -1 if max_seconds is None else math.floor(max_seconds * sr) + 1


def _decode_soundfile(data: bytes, max_seconds: float | None = None) -> _Attempt:
    try:
        handle = sf.SoundFile(io.BytesIO(data))
    except _SF_ERRORS:
        return _Attempt()
    with handle:
        sr = int(handle.samplerate)
        if max_seconds is not None and sr > 0:
            _check_duration(handle.frames / sr, max_seconds)
        try:
            frames = handle.read(_frame_limit(sr, max_seconds), dtype="float32", always_2d=True)
        except _SF_ERRORS:
            return _Attempt(None, sr, "audio")
    return _Attempt(np.ascontiguousarray(frames.T), sr, "audio")


def _decode_pyav(data: bytes, max_seconds: float | None = None) -> _Attempt:
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except _AV_ERRORS:
        return _Attempt()
    with container:
        if not container.streams.audio:
            return _Attempt(status="no_audio")
        stream = container.streams.audio[0]
        sr = int(stream.codec_context.sample_rate or stream.rate or 0)
        if max_seconds is not None:
            _check_duration(_declared_seconds(container, stream), max_seconds)
        chunks = _pyav_frames(container, stream, _frame_limit(sr, max_seconds))
    if not chunks or sr <= 0:
        return _Attempt(None, sr, "audio")
    return _Attempt(np.concatenate(chunks, axis=1), sr, "audio")


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    """The duration the container or stream header declares (0 when it declares none)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return (container.duration or 0) / av.time_base


def _pyav_frames(
    container: av.container.InputContainer, stream: av.AudioStream, limit: int = -1
) -> list[np.ndarray]:
    """Decode frames as planar float32 ``[channels, n]``; stop quietly at the first error,
    keeping what decoded before it (a truncated file gives its valid part), and stop once more
    than ``limit`` frames have decoded (-1: no limit)."""
    resampler = av.AudioResampler(format="fltp")
    chunks: list[np.ndarray] = []
    decoded = 0
    try:
        for frame in container.decode(stream):
            chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            decoded += frame.samples
            if 0 <= limit < decoded:
                break
        else:
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    except _AV_ERRORS:
        pass
    if chunks and any(c.shape[0] != chunks[0].shape[0] for c in chunks):
        chunks = [c for c in chunks if c.shape[0] == chunks[0].shape[0]]
    return [np.asarray(c, dtype=np.float32) for c in chunks]


# --------------------------------------------------------------------------- resampling, loudness


def resample(audio: np.ndarray, sr_from: int, sr_to: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono ``[samples]`` (or ``[channels, samples]``) float audio with soxr "VHQ".

    Identity when the rates are equal. The output has torchaudio's length,
    ``ceil(samples · sr_to / sr_from)`` (soxr's own length can differ by a sample: we trim or
    zero-pad the end), so frame counts match the reference's.
    """
    if sr_from <= 0 or sr_to <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_from} and {sr_to}")
    audio = np.asarray(audio, dtype=np.float32)
    if sr_from == sr_to:
        return audio
    n = audio.shape[-1]
    target = -(-n * sr_to // sr_from)
    if n == 0:
        return np.zeros((*audio.shape[:-1], 0), dtype=np.float32)
    data = audio if audio.ndim == 1 else audio.T
    out = np.asarray(soxr.resample(data, sr_from, sr_to, quality="VHQ"), dtype=np.float32)
    out = out if audio.ndim == 1 else out.T
    if out.shape[-1] > target:
        out = out[..., :target]
    elif out.shape[-1] < target:
        pad = [(0, 0)] * (out.ndim - 1) + [(0, target - out.shape[-1])]
        out = np.pad(out, pad)
    return np.ascontiguousarray(out)


def rms(audio: np.ndarray) -> float:
    """Root mean square of all samples (0.0 for an empty array), computed in float64."""
    audio = np.asarray(audio)
    if audio.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def normalize_loudness(
    audio: np.ndarray, target_rms: float = TARGET_RMS
) -> tuple[np.ndarray, float]:
    """Scale a quiet reference up to ``target_rms``; return ``(audio, original_rms)``.

    As in the reference, only quiet audio is changed (RMS ≥ target is left alone) and the RMS is
    taken before resampling. Silent audio (RMS 0) is returned unchanged.
    """
    original = rms(audio)
    audio = np.asarray(audio, dtype=np.float32)
    if 0.0 < original < target_rms:
        audio = (audio * (target_rms / original)).astype(np.float32)
    return audio, original


def restore_loudness(
    wave: np.ndarray, original_rms: float, target_rms: float = TARGET_RMS
) -> np.ndarray:
    """Undo :func:`normalize_loudness` on generated audio: ``wave · original_rms / target_rms``
    when the reference was quieter than the target, ``wave`` unchanged otherwise."""
    wave = np.asarray(wave, dtype=np.float32)
    if original_rms < target_rms:
        return (wave * (original_rms / target_rms)).astype(np.float32)
    return wave


# --------------------------------------------------------------------------- validation, clean-up


def validate_reference(
    audio: np.ndarray, sr: int, *, min_seconds: float = MIN_REFERENCE_SECONDS
) -> None:
    """Raise :class:`InvalidAudio` for a reference clip we cannot clone from.

    Rejected: NaN or infinite samples; shorter than ``min_seconds``; silent, meaning an RMS below
    :data:`SILENCE_DBFS` (-60 dBFS). ``audio`` is mono ``[samples]``.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"expected mono [samples] audio, got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise InvalidAudio("reference audio contains NaN or infinite samples")
    seconds = len(audio) / sr
    if seconds < min_seconds:
        raise InvalidAudio(
            f"reference audio is too short: {seconds:.2f} s (minimum {min_seconds:g} s)",
            details={"seconds": round(seconds, 3), "minimum_seconds": min_seconds},
        )
    level = rms(audio)
    if level < 10 ** (SILENCE_DBFS / 20):
        dbfs = 20 * math.log10(level) if level > 0 else float("-inf")
        raise InvalidAudio(
            f"reference audio is silent: RMS {dbfs:.1f} dBFS "
            f"(needs at least {SILENCE_DBFS:g} dBFS)",
            details={"rms_dbfs": None if level == 0 else round(dbfs, 1)},
        )


def clean_reference(
    audio: np.ndarray, sr: int, *, max_seconds: float = MAX_REFERENCE_SECONDS
) -> np.ndarray:
    """The reference's clean-up of a clip at its own sample rate (pydub semantics).

    ``audio`` is mono ``[samples]`` or ``[channels, samples]`` (the result has the same layout).
    The reference cleans multichannel audio before averaging the channels, measuring loudness
    over all channels' samples together; to cut where it cuts, clean before :func:`to_mono`.

    1. Split on silences ≥ 1000 ms at -50 dBFS (keeping 1000 ms around each piece, 10 ms seek)
       and concatenate the pieces in order, stopping before a piece that would take the total past
       12 s once it is already past 6 s. This always runs, so long pauses are shortened even in a
       short clip.
    2. If the result is still over 12 s, redo 1. on the original with silences ≥ 100 ms at -40 dBFS.
    3. If still over 12 s, cut at 12 s.
    4. Trim leading and trailing audio below -42 dBFS (10 ms chunks from each end).
    5. Append the reference's "50 ms" of silence (:func:`silence.reference_silence_samples`).

    Raises :class:`InvalidAudio` when nothing louder than the silence thresholds is left.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"expected [samples] or [channels, samples], got shape {audio.shape}")
    max_ms = round(max_seconds * 1000)
    clip = _join_pieces(audio, sr, 1000, -50.0, max_ms)
    if silence.length_ms(clip.shape[-1], sr) > max_ms:
        clip = _join_pieces(audio, sr, 100, -40.0, max_ms)
    if silence.length_ms(clip.shape[-1], sr) > max_ms:
        clip = silence.slice_ms(clip, sr, 0, max_ms)
    clip = silence.remove_silence_edges(clip, sr, -42.0)
    if clip.shape[-1] == 0:
        raise InvalidAudio("reference audio has no speech: it is all below -42 dBFS")
    pad = np.zeros((*clip.shape[:-1], silence.reference_silence_samples(sr)), dtype=np.float32)
    return np.concatenate([clip, pad], axis=-1)


def _join_pieces(
    audio: np.ndarray, sr: int, min_silence_ms: int, thresh_db: float, max_ms: int
) -> np.ndarray:
    ranges = silence.split_on_silence(audio, sr, min_silence_ms, thresh_db, 1000, seek_step=10)
    pieces: list[np.ndarray] = [audio[..., :0]]
    total = 0
    for start, end in ranges:
        piece = silence.slice_ms(audio, sr, start, end)
        too_long = silence.length_ms(total + piece.shape[-1], sr) > max_ms
        if silence.length_ms(total, sr) > max_ms // 2 and too_long:
            break
        pieces.append(piece)
        total += piece.shape[-1]
    return np.concatenate(pieces, axis=-1)


@dataclass(frozen=True)
class PreparedReference:
    """A reference ready for the model: 24 kHz mono float32, plus what loudness restore needs."""

    audio: np.ndarray  # [samples] at 24 kHz, loudness-normalised
    original_rms: float  # loudness before normalisation
    source_sample_rate: int  # rate of the decoded file
    seconds: float  # duration at the source rate (what the reference's chunk budget uses)


def prepare_reference(
    source: AudioSource, *, clean: bool = True, target_rms: float = TARGET_RMS
) -> PreparedReference:
    """Load, validate, (optionally) clean, loudness-normalise and resample a reference clip."""
    channels, sr = load_audio(source, mono=False)
    audio = to_mono(channels)
    validate_reference(audio, sr)
    if clean:
        audio = to_mono(clean_reference(channels, sr))
        validate_reference(audio, sr)
    audio, original = normalize_loudness(audio, target_rms)
    return PreparedReference(resample(audio, sr, SAMPLE_RATE), original, sr, len(audio) / sr)
