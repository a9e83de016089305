"""Flow-matching sampling rules, as upstream F5-TTS samples: time grid, duration, initial noise
and the flow step (guidance combine + Euler update).

``batching.py`` batches items of different lengths and grids and calls :func:`flow_step` once per
forward.
"""

from __future__ import annotations

import torch

from f5serve.engine.text import utf8_len

# Empirically Pruned Step Sampling grids, in 1/32 units, for the step counts that have one.
_EPSS_32NDS: dict[int, tuple[int, ...]] = {
    5: (0, 2, 4, 8, 16, 32),
    6: (0, 2, 4, 6, 8, 16, 32),
    7: (0, 2, 4, 6, 8, 16, 24, 32),
    10: (0, 2, 4, 6, 8, 12, 16, 20, 24, 28, 32),
    12: (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32),
    16: (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32),
}
MIN_TEXT_BYTES_FOR_SPEED = 10  # shorter generated texts are spoken at speed 0.3
SHORT_TEXT_SPEED = 0.3


def time_grid(
    steps: int,
    sway_coef: float | None,
    *,
    use_epss: bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The ``steps + 1`` flow times from 0 to 1, with sway sampling applied."""
    if use_epss and steps in _EPSS_32NDS:
        t = (1 / 32) * torch.tensor(_EPSS_32NDS[steps], dtype=dtype)
    else:
        t = torch.linspace(0, 1, steps + 1, dtype=dtype)
    if sway_coef is not None:
        t = t + sway_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
    return t


def estimate_frames(ref_frames: int, ref_text: str, gen_text: str, speed: float) -> int:
    """Total frames (reference + generated) by upstream F5-TTS's speaking-rate rule.

    ``ref_frames`` is ``ref_samples // 256``; texts are compared by UTF-8 bytes. A generated
    text under 10 bytes is spoken at speed 0.3 (upstream's rule for very short texts).
    """
    if utf8_len(gen_text) < MIN_TEXT_BYTES_FOR_SPEED:
        speed = SHORT_TEXT_SPEED
    return ref_frames + int(ref_frames / utf8_len(ref_text) * utf8_len(gen_text) / speed)


def frames_for_seconds(seconds: float, sample_rate: int, hop_length: int) -> int:
    """Frames for a fixed total duration (reference + generated) in seconds."""
    return int(seconds * sample_rate / hop_length)


def clamp_frames(frames: int, text_tokens: int, cond_frames: int, max_frames: int) -> int:
    """At least one frame beyond both the text and the reference; at most ``max_frames``."""
    return min(max(frames, max(text_tokens, cond_frames) + 1), max_frames)


def initial_noise(frames: int, seed: int, mel_dim: int = 100) -> torch.Tensor:
    """``torch.randn(frames, mel_dim)`` from a CPU generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(frames, mel_dim, generator=generator)


def flow_step(
    x: torch.Tensor,
    flow: torch.Tensor,
    guided: torch.Tensor,
    cfg: torch.Tensor,
    dt: torch.Tensor,
) -> torch.Tensor:
    """One Euler step with classifier-free guidance; pure (tensors in, a new tensor out).

    ``x`` ``[B, N, D]`` are the states; ``flow`` ``[B + G, N, D]`` the model's output for them
    followed by the unconditional rows of the ``G`` items listed in ``guided`` ``[G]``, whose
    weights are ``cfg`` ``[G, 1, 1]``; ``dt`` ``[B]`` each item's step. A guided item moves by
    ``v_c + (v_c - v_u) · cfg``, an unguided one by its conditional flow.
    """
    v = flow[: x.shape[0]]
    if guided.numel():
        v_c = v[guided]
        v = v.index_copy(0, guided, v_c + (v_c - flow[x.shape[0] :]) * cfg.to(v.dtype))
    return x + dt[:, None, None] * v
