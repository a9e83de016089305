"""The compiled DiT (inductor's CPU backend here): equal to eager, and no recompile per request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from dit_batches import flow_inputs, rel_err
from torch._dynamo.utils import counters

from f5serve import Engine
from f5serve.engine import compile as compiling
from f5serve.engine.dit import DiT, run_block

TOL = 1e-3
REF_TEXT = "Some call me nature, others call me mother nature."
LONG_TEXT = " ".join(["The weather is lovely today, so let us take a long walk in the park."] * 4)


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@torch.inference_mode()
def compare(model: DiT, lengths: list[int], seed: int) -> float:
    """Relative error of the compiled forward against the eager one on the real frames."""
    inputs = flow_inputs(model, lengths, seed)
    compiled = model(*inputs)
    compiled_runner = model.run_block
    model.run_block = run_block
    try:
        eager = model(*inputs)
    finally:
        model.run_block = compiled_runner
    real = inputs[-1][..., None] if inputs[-1] is not None else torch.ones_like(eager, dtype=bool)
    return rel_err(compiled * real, eager * real)


@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_blocks_equal_eager_across_lengths_with_one_graph(engine: Engine) -> None:
    model = engine.model
    compiling.set_mode(model, "on")
    try:
        assert compare(model, [50, 73, 64], seed=0) < TOL  # mixed lengths: the key mask
        graphs = counters["stats"]["unique_graphs"]
        assert graphs == 1, "one graph serves every block"
        assert compare(model, [90, 41], seed=1) < TOL  # other rows and frames ...
        assert compare(model, [120, 33, 77, 100], seed=2) < TOL
        assert counters["stats"]["unique_graphs"] == graphs  # ... and no recompile
    finally:
        compiling.set_mode(model, "off")
    assert model.run_block is run_block


@pytest.mark.usefixtures("dynamo_only")
def test_warm_up_builds_every_graph_serving_needs(engine: Engine, fixtures_dir: Path) -> None:
    ref = fixtures_dir / "basic_ref_en.wav"
    eager = engine.synthesize(LONG_TEXT, ref, REF_TEXT, seed=3, nfe_steps=4)
    try:
        engine.compile("on")
        assert engine.compile_mode == "on"
        graphs = counters["stats"]["unique_graphs"]
        assert graphs == 3  # one row; rows without a mask; rows with one
        compiled = engine.synthesize(LONG_TEXT, ref, REF_TEXT, seed=3, nfe_steps=4)
        engine.synthesize("Just one row.", ref, REF_TEXT, seed=4, nfe_steps=2, cfg_strength=0.0)
        engine.synthesize("Two rows now.", ref, REF_TEXT, seed=5, nfe_steps=2)
        assert counters["stats"]["unique_graphs"] == graphs  # no request compiled anything
    finally:
        engine.compile("off")
    assert len(compiled.chunks) > 1
    assert rel_err(torch.from_numpy(compiled.audio), torch.from_numpy(eager.audio)) < TOL


def test_modes_resolve_per_device_and_a_bad_mode_is_named(engine: Engine) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compiling.resolve_mode("auto", cpu) == "off"
    assert compiling.resolve_mode("auto", cuda) == "on"
    assert compiling.resolve_mode("max", cpu) == "max"
    with pytest.raises(ValueError, match="'fast' is not one of off, auto, on, max"):
        compiling.resolve_mode("fast", cpu)
    assert engine.compile("auto") == 0.0  # a CPU: stays eager, nothing built
    assert engine.compile_mode == "off" and engine.model.run_block is run_block


def test_the_cache_folder_is_set_once_and_an_explicit_one_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "")  # restored after the test ...
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")  # ... in which it is unset
    assert compiling.use_cache_dir(tmp_path / "a") == tmp_path / "a"
    assert (tmp_path / "a").is_dir()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert compiling.use_cache_dir(tmp_path / "b") == tmp_path / "mine"
    assert not (tmp_path / "b").exists()
    # importing torch._dynamo sets torch's default folder: that is no one's choice
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    assert compiling.use_cache_dir(tmp_path / "c") == tmp_path / "c"
