"""Reference clean-up cases shared by ``test_audio.py`` and the reference recorder below.

Every case is built deterministically from the speech fixtures (16-bit samples, zeros and a
synthetic low-level hum), so the reference implementation and our engine see identical input.

Run this file with the reference environment to (re)record what F5-TTS's
``preprocess_ref_audio_text`` (pydub) makes of each case::

    .venv-ref/bin/python tests/unit/reference_cleanup_cases.py

It writes ``tests/fixtures/reference_cleanup.json``: per case, the input length and rate, and
the output length and SHA-256 of its 16-bit samples. Needs only numpy and soundfile (plus f5-tts
for recording), not f5serve.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RECORD = FIXTURES / "reference_cleanup.json"


def _read(name: str) -> tuple[np.ndarray, int]:
    data, sr = sf.read(FIXTURES / name, dtype="int16")
    return np.asarray(data, dtype=np.int16), int(sr)


def _zeros(seconds: float, sr: int) -> np.ndarray:
    return np.zeros(int(seconds * sr), dtype=np.int16)


def hum(num_samples: int, sr: int, dbfs: float) -> np.ndarray:
    """A deterministic steady signal at ``dbfs`` RMS (three incommensurate sines), as int16."""
    t = np.arange(num_samples, dtype=np.float64) / sr
    wave = (
        np.sin(2 * np.pi * 97.0 * t)
        + np.sin(2 * np.pi * 331.7 * t)
        + np.sin(2 * np.pi * 1213.3 * t)
    )
    wave *= 10 ** (dbfs / 20) / np.sqrt(1.5)  # each unit sine has RMS 1/sqrt(2)
    return np.round(wave * 32768).astype(np.int16)


def _with_hum(audio: np.ndarray, sr: int, dbfs: float) -> np.ndarray:
    mixed = audio.astype(np.int32) + hum(len(audio), sr, dbfs)
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def build_cases() -> dict[str, tuple[np.ndarray, int]]:
    """Case name → (int16 samples, sample rate); samples are ``[n]`` or ``[n, channels]``."""
    en, sr = _read("basic_ref_en.wav")
    zh, _ = _read("basic_ref_zh.wav")
    m44, sr44 = _read("speech_44k.flac")
    m22, sr22 = m44[::2].copy(), sr44 // 2
    head = np.concatenate([en, zh[: int(2.67 * sr)]])  # 8.0 s of speech
    quiet_gap = hum(int(1.5 * sr), sr, -45.0)
    left = np.concatenate([en, _zeros(1.0, sr), en, _zeros(1.4, sr), en])
    right = np.concatenate([zh // 3, _zeros(0.2, sr), zh // 3])[: len(left)]
    right = np.concatenate([right, np.zeros(len(left) - len(right), dtype=np.int16)])
    return {
        "gap_1500ms_at_8s": (np.concatenate([head, _zeros(1.5, sr), zh, en]), sr),
        "no_silence_hard_cut": (_with_hum(np.concatenate([en, zh, en]), sr, -35.0), sr),
        "gaps_at_minus45_dbfs": (np.concatenate([en, quiet_gap, zh, quiet_gap, en]), sr),
        "edges_only": (np.concatenate([_zeros(0.5, sr), en, _zeros(0.7, sr)]), sr),
        "long_pause_short_clip": (np.concatenate([en, _zeros(3.0, sr), zh[: 3 * sr]]), sr),
        "speech_44k_repeated": (np.concatenate([m44, m44, m44, m44]), sr44),
        "speech_22k_gap": (np.concatenate([m22, _zeros(1.2, sr22), m22, m22, m22]), sr22),
        "stereo_channels_differ": (np.stack([left, right], axis=1), sr),
    }


def digest(samples: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(samples, dtype="<i2").tobytes()).hexdigest()


def _record() -> None:  # pragma: no cover - run by hand in the reference environment
    from f5_tts.infer.utils_infer import preprocess_ref_audio_text

    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (samples, sr) in build_cases().items():
            path = Path(tmp) / f"{name}.wav"
            sf.write(path, samples, sr, subtype="PCM_16")
            out_path, _ = preprocess_ref_audio_text(
                str(path), "Some reference text.", show_info=print
            )
            out, out_sr = sf.read(out_path, dtype="int16")  # [n] or [n, channels]
            results[name] = {
                "input_samples": len(samples),
                "sample_rate": sr,
                "output_sample_rate": int(out_sr),
                "output_samples": len(out),
                "output_sha256": digest(out),
            }
            print(name, results[name], file=sys.stderr)
    RECORD.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    _record()
