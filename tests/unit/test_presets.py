"""Full-size presets produce exactly the official checkpoint layout (built on the meta device)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from f5serve.engine.config import PRESETS, DiTConfig, resolve_arch
from f5serve.engine.dit import DiT
from f5serve.engine.vocoder import Vocos, VocosConfig
from f5serve.errors import ModelError, NotFound, UnknownPreset

FULL_PRESETS = ["F5TTS_v1_Base", "F5TTS_Base", "F5TTS_v1_Small", "F5TTS_Small"]


@pytest.mark.parametrize("preset", FULL_PRESETS)
def test_preset_builds_exactly_the_official_keys_and_shapes(golden_dir: Path, preset: str) -> None:
    spec = json.loads((golden_dir / "keys" / f"keys_{preset}.json").read_text())
    with torch.device("meta"):
        model = DiT(PRESETS[preset].with_vocab_size(spec["vocab_size"]))
    ours = {f"ema_model.transformer.{k}": list(v.shape) for k, v in model.state_dict().items()}
    assert ours == spec["keys"]
    assert sum(p.numel() for p in model.parameters()) == spec["parameters"]
    for key, value in spec["arch"].items():
        assert getattr(PRESETS[preset], key) == value


def test_full_vocos_builds_exactly_the_official_keys(golden_dir: Path) -> None:
    spec = json.loads((golden_dir / "keys" / "keys_vocos_mel_24khz.json").read_text())
    cfg = VocosConfig.from_yaml(golden_dir / "keys" / "vocos_mel_24khz_config.yaml")
    with torch.device("meta"):
        model = Vocos(cfg)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    # The official file also stores the feature extractor's mel buffers; we compute those.
    official = {k: v for k, v in spec["keys"].items() if not k.startswith("feature_extractor.")}
    assert ours == official
    assert set(spec["keys"]) - set(official) == {
        "feature_extractor.mel_spec.spectrogram.window",
        "feature_extractor.mel_spec.mel_scale.fb",
    }


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(UnknownPreset, match="F5TTS_v1_Base"):
        resolve_arch("F5TTS_v9_Huge")


def test_arch_mapping_accepts_official_yaml_options_and_rejects_typos() -> None:
    cfg = resolve_arch(
        {
            "dim": 64,
            "depth": 2,
            "heads": 4,
            "checkpoint_activations": False,
            "attn_backend": "torch",
            "attn_mask_enabled": False,
            "qk_norm": None,
        }
    )
    assert cfg == DiTConfig(dim=64, depth=2, heads=4)
    with pytest.raises(ModelError, match="dimm"):
        resolve_arch({"dimm": 64, "depth": 2, "heads": 4})
    with pytest.raises(ModelError, match="heads"):
        resolve_arch({"dim": 64, "depth": 2})


def test_arch_json_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        resolve_arch(str(tmp_path / "missing.json"))
