"""Comparing two decodings of the same audio encoded two ways (streamed and whole).

A streamed MP3 has no Xing/LAME header, so decoders keep the encoder's priming samples (1105 at
24 kHz) that the header of a whole file tells them to drop; the other formats decode to the same
number of samples. :func:`assert_same_audio` finds that offset (cross-correlation within
``MAX_LAG`` samples) and then compares the overlap sample by sample.
"""

from __future__ import annotations

import numpy as np

from f5serve.engine.audio import load_audio

MAX_LAG = 4096
# Both sides come from the same encoder fed the same samples, so they decode identically; the
# tolerance only absorbs float rounding in the decoders (a lossy codec's own error versus the
# input is ~1e-2, far above this, so a different encoding would fail).
TOLERANCE = 1e-4


def lag(a: np.ndarray, b: np.ndarray) -> int:
    """The offset ``k`` (|k| ≤ MAX_LAG) at which ``a[k:]`` lines up best with ``b``."""
    n = min(len(a), len(b)) - MAX_LAG
    window = b[MAX_LAG : MAX_LAG + n // 2] if n > 0 else b
    scores = [
        float(np.dot(a[MAX_LAG + k : MAX_LAG + k + len(window)], window))
        if MAX_LAG + k >= 0 and MAX_LAG + k + len(window) <= len(a)
        else -np.inf
        for k in range(-MAX_LAG, MAX_LAG + 1)
    ]
    return int(np.argmax(scores)) - MAX_LAG


def assert_same_audio(streamed: bytes, whole: bytes, fmt: str) -> int:
    """``streamed`` and ``whole`` decode to the same audio after aligning; returns the lag."""
    a, sr_a = load_audio(streamed)
    b, sr_b = load_audio(whole)
    assert sr_a == sr_b
    k = lag(a, b)
    if fmt != "mp3":
        assert k == 0 and len(a) == len(b), (fmt, k, len(a), len(b))
    aligned = a[k:] if k >= 0 else a
    reference = b if k >= 0 else b[-k:]
    n = min(len(aligned), len(reference))
    assert n >= len(b) - MAX_LAG, (fmt, n, len(b))
    assert np.abs(aligned[:n] - reference[:n]).max() <= TOLERANCE, fmt
    return k
