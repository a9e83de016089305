"""``Engine.synthesize`` reproduces the reference's final waveforms (float32, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from f5serve import Engine

GOLDEN_DIR = Path(__file__).parents[1] / "fixtures" / "golden"
MANIFEST = json.loads((GOLDEN_DIR / "manifest.json").read_text())["cases"]["e2e"]
TOL = 1e-5


@pytest.fixture(scope="module")
def engines() -> dict[str, Engine]:
    return {
        model: Engine.from_files(
            checkpoint=GOLDEN_DIR / f"{model}.safetensors",
            vocab=GOLDEN_DIR / "vocab.txt",
            arch=json.loads((GOLDEN_DIR / f"{model}.json").read_text()),
            vocoder=GOLDEN_DIR / "vocos",
            device="cpu",
        )
        for model in ("dit_v1", "dit_v0")
    }


@pytest.mark.parametrize("case", MANIFEST["cases"], ids=lambda c: c["key"])
def test_synthesize_matches_reference_waveform(engines: dict[str, Engine], case: dict) -> None:
    golden = load_file(GOLDEN_DIR / "e2e.safetensors")
    result = engines[case["model"]].synthesize(
        case["gen_text"],
        ref_audio=(golden["ref_wave"][0], 24000),
        ref_text=MANIFEST["ref_text"],
        nfe_steps=case["nfe_step"],
        cfg_strength=MANIFEST["cfg_strength"],
        sway_sampling_coef=MANIFEST["sway_sampling_coef"],
        speed=case["speed"],
        seed=case["seed"],
        preprocess_ref=False,
    )
    expected = golden[case["key"]]
    assert result.sample_rate == 24000
    assert result.audio.dtype == np.float32
    assert result.audio.shape == expected.shape == (case["samples"],)
    assert result.chunks == [case["gen_text"]]
    assert result.seed == case["seed"]
    error = np.linalg.norm(result.audio - expected) / np.linalg.norm(expected)
    assert error <= TOL
