"""The DiT backbone and the sampler reproduce the reference's golden outputs (float32, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from f5serve.engine import sampler
from f5serve.engine.batching import FlowBatcher, FlowItem
from f5serve.engine.checkpoint import dit_weights, load_into, read_state_dict
from f5serve.engine.config import resolve_arch
from f5serve.engine.dit import DiT
from f5serve.engine.mel import MelSpectrogram
from f5serve.engine.text import Vocab, text_to_ids

TOL = 1e-5
VERSIONS = ["v1", "v0"]


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def build(golden_dir: Path, version: str, fmt: str = "safetensors") -> DiT:
    cfg = resolve_arch(json.loads((golden_dir / f"dit_{version}.json").read_text()))
    model = DiT(cfg)
    load_into(model, dit_weights(read_state_dict(golden_dir / f"dit_{version}.{fmt}")), "golden")
    return model.eval()


@pytest.mark.parametrize("version", VERSIONS)
def test_pt_and_safetensors_checkpoints_hold_the_same_weights(
    golden_dir: Path, version: str
) -> None:
    a = build(golden_dir, version, "safetensors").state_dict()
    b = build(golden_dir, version, "pt").state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("version", VERSIONS)
@torch.inference_mode()
def test_forward_matches_reference(golden_dir: Path, version: str) -> None:
    model = build(golden_dir, version)
    g = load_file(golden_dir / f"dit_{version}_forward.safetensors")
    x, cond, ids, time = g["x"], g["cond"], g["text"], g["time"]
    batch, frames = x.shape[:2]
    text_c = model.embed_text(ids, [frames] * batch, drop_text=False)
    text_u = model.embed_text(ids, [frames] * batch, drop_text=True)
    out_cond = model(x, cond, text_c, time)
    out_uncond = model(x, torch.zeros_like(cond), text_u, time)
    out_packed = model(
        torch.cat((x, x)),
        torch.cat((cond, torch.zeros_like(cond))),
        torch.cat((text_c, text_u)),
        torch.cat((time, time)),
    )
    assert rel_err(out_cond, g["out_cond"]) <= TOL
    assert rel_err(out_uncond, g["out_uncond"]) <= TOL
    assert rel_err(out_packed, g["out_cfg_packed"]) <= TOL


@pytest.mark.parametrize("version", VERSIONS)
@torch.inference_mode()
def test_masked_forward_matches_reference_and_padded_rows_match_alone(
    golden_dir: Path, version: str
) -> None:
    model = build(golden_dir, version)
    g = load_file(golden_dir / f"dit_{version}_forward.safetensors")
    x, cond, ids, time, mask = g["x"], g["cond"], g["text"], g["time"], g["mask"]
    lengths = mask.sum(dim=1).tolist()
    assert lengths[1] < x.shape[1], "the fixture's row 1 must be padded"
    text_emb = model.embed_text(ids, lengths, drop_text=False)
    out = model(x, cond, text_emb, time, mask)
    # Row 0 is full length: identical to the reference.
    assert rel_err(out[0], g["out_masked_cond"][0]) <= TOL
    # Row 1 is padded: we mask attention keys too, so it equals the row run alone.
    n = lengths[1]
    alone = model(x[1:2, :n], cond[1:2, :n], model.embed_text(ids[1:2], [n], False), time[1:2])
    assert rel_err(out[1, :n], alone[0]) <= TOL


def sample_cases(golden_dir: Path) -> list[tuple[str, str]]:
    manifest = json.loads((golden_dir / "manifest.json").read_text())
    return [
        (version, case)
        for version in VERSIONS
        for case in manifest["cases"][f"dit_{version}"]["sample_cases"]
    ]


GOLDEN_DIR = Path(__file__).parents[1] / "fixtures" / "golden"


@pytest.mark.parametrize(("version", "case"), sample_cases(GOLDEN_DIR))
@torch.inference_mode()
def test_sampling_trajectory_matches_reference(golden_dir: Path, version: str, case: str) -> None:
    meta = json.loads((golden_dir / "manifest.json").read_text())["cases"][f"dit_{version}"]
    spec = meta["sample_cases"][case]
    g = load_file(golden_dir / f"dit_{version}_sample_{case}.safetensors")
    model = build(golden_dir, version)
    vocab = Vocab.from_file(golden_dir / "vocab.txt")

    frames = spec["duration"]
    ref_mel = MelSpectrogram()(g["ref_wave"])[0].transpose(0, 1)  # [Nr, 100]
    cond = torch.zeros(frames, 100)
    cond[: ref_mel.shape[0]] = ref_mel
    ids = text_to_ids(meta["ref_text"] + meta["gen_text"], vocab)
    y0 = sampler.initial_noise(frames, spec["seed"])
    assert torch.equal(y0, g["y0"][0]), "the seeded noise must be the reference's"

    states = [y0]
    item = FlowItem(
        cond=cond,
        cond_frames=ref_mel.shape[0],
        text_ids=torch.tensor(ids),
        y=y0,
        grid=sampler.time_grid(
            spec["steps"], spec["sway_sampling_coef"], use_epss=spec["use_epss"]
        ),
        cfg_strength=spec["cfg_strength"],
        on_step=lambda _step: states.append(item.y.clone()),
    )
    batcher = FlowBatcher(model)
    batcher.add(item)
    while batcher.items:
        batcher.step()
    trajectory = torch.stack(states)
    assert trajectory.shape == g["trajectory"].shape
    for step, (ours, ref) in enumerate(zip(trajectory, g["trajectory"], strict=True)):
        assert rel_err(ours, ref) <= TOL, f"step {step}"
    assert rel_err(item.result(), g["out_mel"][0]) <= TOL


def test_epss_grids_match_reference(golden_dir: Path) -> None:
    expected = json.loads((golden_dir / "text.json").read_text())["epss_timesteps"]
    for steps, grid in expected.items():
        ours = sampler.time_grid(int(steps), None)
        assert ours.tolist() == pytest.approx(grid, abs=1e-7), steps
