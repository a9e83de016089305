"""Checkpoint formats: EMA safetensors, training .pt files, plain state dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from f5serve.engine.checkpoint import dit_weights, read_state_dict
from f5serve.errors import ModelError, NotFound


@pytest.fixture(scope="module")
def ema(golden_dir: Path) -> dict[str, torch.Tensor]:
    return read_state_dict(golden_dir / "dit_v1.safetensors")


def test_training_pt_with_stale_mel_buffers_and_counters_loads(
    tmp_path: Path, ema: dict[str, torch.Tensor]
) -> None:
    trainer = {k.removeprefix("ema_model."): v for k, v in ema.items()}
    stale = {
        "ema_model.mel_spec.mel_stft.mel_scale.fb": torch.zeros(513, 100),
        "ema_model.mel_spec.mel_stft.spectrogram.window": torch.zeros(1024),
        "initted": torch.tensor(True),
        "step": torch.tensor(1200),
    }
    path = tmp_path / "model_1200.pt"
    torch.save({"ema_model_state_dict": {**ema, **stale}, "model_state_dict": trainer}, path)
    loaded = dit_weights(read_state_dict(path))
    assert loaded.keys() == dit_weights(ema).keys()
    assert all(torch.equal(loaded[k], v) for k, v in dit_weights(ema).items())


def test_full_training_checkpoint_serves_its_ema_weights(
    tmp_path: Path, ema: dict[str, torch.Tensor]
) -> None:
    """What upstream's trainer saves (the shape of hynt/F5-TTS-Vietnamese-ViVoice's
    model_last.pt): raw model weights that differ from the EMA, and the optimizer's state."""
    trained = {k.removeprefix("ema_model."): v + 1 for k, v in ema.items()}
    adam = {
        i: {"step": torch.tensor(9.0), "exp_avg": v.clone(), "exp_avg_sq": v.clone()}
        for i, v in enumerate(trained.values())
    }
    checkpoint = {
        "model_state_dict": trained,
        "optimizer_state_dict": {
            "state": adam,
            "param_groups": [{"lr": 1e-5, "betas": (0.9, 0.999), "params": list(adam)}],
        },
        "ema_model_state_dict": {**ema, "initted": torch.tensor(True), "step": torch.tensor(9)},
        "scheduler_state_dict": {"last_epoch": 9, "_milestones": [300]},
        "update": 9,
    }
    path = tmp_path / "model_last.pt"
    torch.save(checkpoint, path)
    loaded = dit_weights(read_state_dict(path))
    assert loaded.keys() == dit_weights(ema).keys()
    assert all(torch.equal(loaded[k], v) for k, v in dit_weights(ema).items())


@pytest.mark.parametrize("prefix", ["", "transformer."])
def test_plain_state_dicts_load(tmp_path: Path, ema: dict[str, torch.Tensor], prefix: str) -> None:
    plain = {prefix + k.removeprefix("ema_model.transformer."): v for k, v in ema.items()}
    path = tmp_path / "plain.pt"
    torch.save(plain, path)
    assert dit_weights(read_state_dict(path)).keys() == dit_weights(ema).keys()


def test_unreadable_and_missing_checkpoints(tmp_path: Path) -> None:
    junk = tmp_path / "model.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError, match="cannot read checkpoint"):
        read_state_dict(junk)
    not_dict = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_dict)
    with pytest.raises(ModelError, match="does not hold a state dict"):
        read_state_dict(not_dict)
    with pytest.raises(NotFound, match="checkpoint file not found"):
        read_state_dict(tmp_path / "absent.pt")


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> Any:
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"ema_model_state_dict": {"x": Evil()}}, path)
    with pytest.raises(ModelError, match="cannot read checkpoint"):
        read_state_dict(path)
