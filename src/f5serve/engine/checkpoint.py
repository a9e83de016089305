"""Reading official and community F5-TTS checkpoints (.safetensors, .pt) into our modules."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from f5serve.errors import CheckpointMismatch, ModelError, NotFound

# Entries of training checkpoints that are not weights.
_NOT_WEIGHTS = ("initted", "step")
_STALE_PREFIXES = ("mel_spec.",)
_MAX_LISTED = 8


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors``, ``.pt``/``.ckpt``/``.bin`` file, as stored (on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"checkpoint file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        # A training checkpoint holds the model, its EMA and the optimizer state (5.4 GB for
        # a Base model, of which 1.35 GB are used): map it instead of reading it all (only
        # files in torch's zip format can be mapped).
        raw = torch.load(
            str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except Exception as exc:  # any decoder error means the same thing to the user
        raise ModelError(f"cannot read checkpoint {path}: {exc}") from exc
    return _pick_weights(raw, path)


def _pick_weights(raw: Any, path: Path) -> dict[str, torch.Tensor]:
    """The weights to serve: the EMA weights of a training checkpoint (upstream's trainer saves
    ``model_state_dict``, ``ema_model_state_dict``, ``optimizer_state_dict``,
    ``scheduler_state_dict`` and the step), else its model weights, else the file itself."""
    if not isinstance(raw, Mapping):
        raise ModelError(f"checkpoint {path} does not hold a state dict")
    for key in ("ema_model_state_dict", "model_state_dict", "state_dict"):
        if isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    return {k: v for k, v in raw.items() if isinstance(v, torch.Tensor)}


def strip_prefixes(
    state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Remove the first matching prefix from each key; drop non-weights and stale buffers."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in _NOT_WEIGHTS:
            continue
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if key.startswith(_STALE_PREFIXES):
            continue
        out[key] = value
    return out


def dit_weights(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Normalise EMA (``ema_model.transformer.``), trainer (``transformer.``) and bare keys."""
    return strip_prefixes(strip_prefixes(state, ("ema_model.",)), ("transformer.",))


def vocab_size_of(state: Mapping[str, torch.Tensor]) -> int | None:
    """Vocab size the checkpoint was trained with (its text embedding rows minus the filler)."""
    weight = state.get("text_embed.text_embed.weight")
    return None if weight is None else int(weight.shape[0]) - 1


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Copy ``state`` into ``module``; any missing, unexpected or mis-shaped key is an error."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches: {_listing(wrong)}")
    if problems:
        raise CheckpointMismatch(
            f"{what} does not fit the architecture: " + "; ".join(problems),
            details={"missing": missing, "unexpected": unexpected, "shape_mismatches": wrong},
        )
    module.load_state_dict(dict(state), strict=True)
