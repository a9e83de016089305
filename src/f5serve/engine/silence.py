"""Silence detection with the exact semantics of ``pydub.silence`` (pydub 0.25.1), on numpy arrays.

The reference F5-TTS cleans its reference audio with pydub. pydub addresses audio in whole
milliseconds and measures loudness in integer RMS of 16-bit samples; to cut at the same places we
mirror its arithmetic rather than reinvent it:

* a length in ms is ``round(1000 · samples / sr)``; a position of ``ms`` milliseconds is sample
  ``int(ms · (sr / 1000))``; slices are clamped to the length in ms and padded with zeros when that
  rounded length runs past the last sample (pydub pads up to 2 ms the same way);
* the RMS of a slice is ``audioop.rms`` of the 16-bit samples: ``floor(sqrt(mean(x²)))`` with
  ``x = sample · 32768``. For audio read from 16-bit files (float = int / 32768) this is exact; for
  other sources it is the same measure on a 16-bit scale (differences well below one LSB);
* dBFS is ``20·log10(rms / 32768)``, and ``-inf`` for a zero RMS.

All functions take float audio (samples in [-1, 1]), mono ``[samples]`` or ``[channels, samples]``
(as pydub, the RMS of several channels is taken over all their samples together), and its sample
rate; positions are in ms.
"""

from __future__ import annotations

import itertools

import numpy as np

FULL_SCALE = 32768.0
"""pydub's ``max_possible_amplitude`` for 16-bit audio: the scale RMS levels are measured on."""


def length_ms(num_samples: int, sr: int) -> int:
    """pydub's ``len(segment)``: the length in whole milliseconds (rounded)."""
    return round(1000 * (num_samples / sr))


def ms_to_samples(ms: int, sr: int) -> int:
    """pydub's ``_parse_position``: the sample index of a millisecond position (truncated)."""
    return int(ms * (sr / 1000.0))


def slice_ms(audio: np.ndarray, sr: int, start_ms: int, end_ms: int) -> np.ndarray:
    """``segment[start_ms:end_ms]``: clamp to the length in ms, zero-pad a short tail."""
    total_ms = length_ms(audio.shape[-1], sr)
    start = ms_to_samples(min(start_ms, total_ms), sr)
    end = ms_to_samples(min(end_ms, total_ms), sr)
    return _slice_padded(audio, start, end)


def _slice_padded(audio: np.ndarray, start: int, end: int) -> np.ndarray:
    piece = audio[..., start:end]
    missing = (end - start) - piece.shape[-1]
    if missing > 0:
        pad = [(0, 0)] * (audio.ndim - 1) + [(0, missing)]
        piece = np.pad(piece, pad)
    return piece


class _RmsMeter:
    """Integer 16-bit-scale RMS of arbitrary sample ranges, from one cumulative sum of squares."""

    def __init__(self, audio: np.ndarray) -> None:
        scaled = np.asarray(audio, dtype=np.float64) * FULL_SCALE
        squares = scaled * scaled if scaled.ndim == 1 else np.sum(scaled * scaled, axis=0)
        self._cumsum = np.concatenate([[0.0], np.cumsum(squares)])
        self._n = audio.shape[-1]
        self._channels = 1 if audio.ndim == 1 else audio.shape[0]

    def rms(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``audioop.rms`` of ``audio[start:end]`` per pair; samples past the end count as zeros."""
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        sums = self._cumsum[np.minimum(ends, self._n)] - self._cumsum[np.minimum(starts, self._n)]
        counts = (ends - starts) * self._channels
        safe = np.where(counts > 0, counts, 1)
        values = np.floor(np.sqrt(np.maximum(sums, 0.0) / safe))
        return np.where(counts > 0, values, 0.0)


def _dbfs(rms_values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(rms_values / FULL_SCALE)


def _ms_positions(ms: np.ndarray, sr: int) -> np.ndarray:
    return (np.asarray(ms, dtype=np.float64) * (sr / 1000.0)).astype(np.int64)


def detect_silence(
    audio: np.ndarray, sr: int, min_silence_len: int, silence_thresh: float, seek_step: int = 1
) -> list[tuple[int, int]]:
    """``pydub.silence.detect_silence``: silent ``(start_ms, end_ms)`` ranges.

    A window of ``min_silence_len`` ms starting every ``seek_step`` ms (and at the last possible
    start) is silent when its RMS is at most ``silence_thresh`` dBFS; overlapping or touching
    silent windows merge into one range.
    """
    seg_len = length_ms(audio.shape[-1], sr)
    if seg_len < min_silence_len:
        return []
    threshold = 10 ** (silence_thresh / 20) * FULL_SCALE
    last_start = seg_len - min_silence_len
    starts_ms = list(range(0, last_start + 1, seek_step))
    if last_start % seek_step:
        starts_ms.append(last_start)
    starts = np.asarray(starts_ms, dtype=np.int64)
    ends = starts + min_silence_len
    levels = _RmsMeter(audio).rms(_ms_positions(starts, sr), _ms_positions(ends, sr))
    silent_starts = [int(s) for s in starts[levels <= threshold]]
    return _merge_silent_starts(silent_starts, min_silence_len, seek_step)


def _merge_silent_starts(starts: list[int], min_len: int, seek_step: int) -> list[tuple[int, int]]:
    if not starts:
        return []
    ranges: list[tuple[int, int]] = []
    range_start = prev = starts[0]
    for start in starts[1:]:
        continuous = start == prev + seek_step
        has_gap = start > prev + min_len
        if not continuous and has_gap:
            ranges.append((range_start, prev + min_len))
            range_start = start
        prev = start
    ranges.append((range_start, prev + min_len))
    return ranges


def detect_nonsilent(
    audio: np.ndarray, sr: int, min_silence_len: int, silence_thresh: float, seek_step: int = 1
) -> list[tuple[int, int]]:
    """``pydub.silence.detect_nonsilent``: the complement of :func:`detect_silence`, in ms."""
    silent = detect_silence(audio, sr, min_silence_len, silence_thresh, seek_step)
    seg_len = length_ms(audio.shape[-1], sr)
    if not silent:
        return [(0, seg_len)]
    if silent[0] == (0, seg_len):
        return []
    ranges: list[tuple[int, int]] = []
    prev_end = 0
    for start, end in silent:
        ranges.append((prev_end, start))
        prev_end = end
    if silent[-1][1] != seg_len:
        ranges.append((prev_end, seg_len))
    if ranges[0] == (0, 0):
        ranges.pop(0)
    return ranges


def split_on_silence(
    audio: np.ndarray,
    sr: int,
    min_silence_len: int,
    silence_thresh: float,
    keep_silence: int,
    seek_step: int = 1,
) -> list[tuple[int, int]]:
    """``pydub.silence.split_on_silence`` as ``(start_ms, end_ms)`` ranges (slice them yourself).

    Each non-silent range is widened by ``keep_silence`` ms on both sides; where two widened ranges
    overlap they meet at the midpoint (integer ms) of the overlap; ranges are clamped to the audio.
    """
    ranges = [
        [start - keep_silence, end + keep_silence]
        for start, end in detect_nonsilent(audio, sr, min_silence_len, silence_thresh, seek_step)
    ]
    for current, following in itertools.pairwise(ranges):
        if following[0] < current[1]:
            current[1] = (current[1] + following[0]) // 2
            following[0] = current[1]
    seg_len = length_ms(audio.shape[-1], sr)
    return [(max(start, 0), min(end, seg_len)) for start, end in ranges]


def detect_leading_silence(
    audio: np.ndarray, sr: int, silence_threshold: float = -50.0, chunk_size: int = 10
) -> int:
    """``pydub.silence.detect_leading_silence``: ms of leading audio below the threshold.

    Steps ``chunk_size`` ms at a time while the chunk's dBFS is *strictly* below
    ``silence_threshold``; the result is a multiple of ``chunk_size`` capped at the length.
    """
    seg_len = length_ms(audio.shape[-1], sr)
    starts = np.arange(0, seg_len, chunk_size, dtype=np.int64)
    ends = np.minimum(starts + chunk_size, seg_len)
    levels = _dbfs(_RmsMeter(audio).rms(_ms_positions(starts, sr), _ms_positions(ends, sr)))
    loud = np.flatnonzero(levels >= silence_threshold)
    if len(loud) == 0:
        return seg_len
    return min(int(starts[loud[0]]), seg_len)


def remove_silence_edges(
    audio: np.ndarray, sr: int, silence_threshold: float = -42.0
) -> np.ndarray:
    """The reference's ``remove_silence_edges`` (f5-tts 1.1.x): trim leading and trailing audio
    below ``silence_threshold`` dBFS in 10 ms chunks, with pydub's ms rounding.

    Leading: ``segment[detect_leading_silence(segment):]`` (always re-sliced, so the length is
    quantised to whole ms). Trailing: :func:`detect_leading_silence` on the reversed samples, and
    ``segment[:len - that]`` only when it is non-zero.
    """
    start_ms = detect_leading_silence(audio, sr, silence_threshold, chunk_size=10)
    audio = slice_ms(audio, sr, start_ms, length_ms(audio.shape[-1], sr))
    end_trim_ms = detect_leading_silence(audio[..., ::-1], sr, silence_threshold, chunk_size=10)
    if end_trim_ms > 0:
        audio = slice_ms(audio, sr, 0, length_ms(audio.shape[-1], sr) - end_trim_ms)
    return audio


def reference_silence_samples(sr: int) -> int:
    """Samples in the reference's appended ``AudioSegment.silent(duration=50)``.

    pydub makes that silence at 11 025 Hz (551 samples) and converts it to the audio's rate with
    ``audioop.ratecv``, which yields ``floor(550 · sr / 11025) + 1`` samples: 1 198 at 24 kHz,
    2 201 at 44.1 kHz (not the 1 200 / 2 205 of an exact 50 ms).
    """
    silent_frames = int(11025 * (50 / 1000.0))
    return (silent_frames - 1) * sr // 11025 + 1
