"""Packed batches: rows of different lengths laid end to end compute what padded rows compute."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from dit_batches import flow_inputs, rel_err
from torch._dynamo.utils import counters

from f5serve import Engine, SynthesisOptions
from f5serve.engine import compile as compiling
from f5serve.engine import packing
from f5serve.engine.batching import FlowBatcher, FlowItem
from f5serve.engine.dit import DiT, run_block
from f5serve.engine.packing import pack_lengths

TOL = 1e-4  # float32, packed against padded + masked
COMPILED_TOL = 1e-3  # compiled (inductor's CPU backend) against eager
REF_TEXT = "Some call me nature, others call me mother nature."
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


def test_packing_lays_rows_end_to_end() -> None:
    p = pack_lengths([2, 3, 1], CPU)
    assert p.flat.tolist() == [0, 1, 3, 4, 5, 6]  # places in the [3 rows × 3 frames] batch
    assert p.rows.tolist() == [0, 0, 1, 1, 1, 2]
    assert p.positions.tolist() == [0, 1, 0, 1, 2, 0]
    assert p.offsets.tolist() == [0, 2, 5, 6] and p.offsets.dtype == torch.int32
    assert p.span.shape == (3,)


@torch.inference_mode()
def test_packed_forward_equals_padded_and_masked_and_each_row_alone(engine: Engine) -> None:
    model = engine.model
    lengths = [50, 73, 64, 9]
    x, cond, text, time, mask = flow_inputs(model, lengths, seed=0)
    assert mask is not None
    padded = model(x, cond, text, time, mask)
    packed = model(x, cond, text, time, mask, pack_lengths(lengths, CPU))
    real = mask[..., None]
    assert rel_err(packed * real, padded * real) < TOL
    assert not packed.masked_select(~real).any(), "padded frames of the packed output are zero"
    for i, n in enumerate(lengths):
        alone = model(x[i : i + 1, :n], cond[i : i + 1, :n], text[i : i + 1, :n], time[i : i + 1])
        assert rel_err(packed[i, :n], alone[0]) < TOL


def reference_varlen(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_q: torch.Tensor,
    cu_k: torch.Tensor,
    max_q: int,
    max_k: int,
) -> torch.Tensor:
    """``varlen_attn``'s documented contract, row by row: ``[T, H, Dh]`` in and out."""
    assert q.shape == k.shape == v.shape and q.ndim == 3
    assert torch.equal(cu_q, cu_k) and cu_q.dtype == torch.int32
    ends = cu_q.tolist()
    assert max_q == max_k == max(b - a for a, b in itertools.pairwise(ends))
    rows = [
        F.scaled_dot_product_attention(*(t[a:b].transpose(0, 1) for t in (q, k, v)))
        for a, b in itertools.pairwise(ends)
    ]
    return torch.cat(rows, dim=1).transpose(0, 1)


@torch.inference_mode()
def test_the_variable_length_kernel_gets_its_documented_layout(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On CUDA the kernel runs; here its contract stands in for it (shapes, offsets, lengths)."""
    lengths = [31, 40, 12]
    x, cond, text, time, mask = flow_inputs(engine.model, lengths, seed=4)
    dense = engine.model(x, cond, text, time, mask, pack_lengths(lengths, CPU))
    calls: list[int] = []

    def kernel(*args: Any) -> torch.Tensor:
        calls.append(1)
        return reference_varlen(*args)

    monkeypatch.setattr(packing, "varlen_kernel", lambda: kernel)
    monkeypatch.setattr(packing, "kernel_available", lambda device, dtype: True)
    varlen = engine.model(x, cond, text, time, mask, pack_lengths(lengths, CPU))
    assert len(calls) == engine.model.cfg.depth
    assert rel_err(varlen, dense) < TOL


def make_items(engine: Engine, ref: Any) -> list[FlowItem]:
    texts = [
        ("Short one.", {}),
        ("A considerably longer sentence that needs many more frames to say.", {}),
        ("No guidance for this medium sentence.", {"cfg_strength": 0.0}),
    ]
    return [
        engine.make_item(ref, t, 7 + i, SynthesisOptions(nfe_steps=5, **o))
        for i, (t, o) in enumerate(texts)
    ]


def sample(batcher: FlowBatcher, items: list[FlowItem]) -> list[torch.Tensor]:
    """Two items start together; the third joins after two steps (a new packing)."""
    batcher.add(items[0])
    batcher.add(items[1])
    batcher.step()
    batcher.step()
    batcher.add(items[2])
    while batcher.items:
        batcher.step()
    return [item.result() for item in items]


@pytest.fixture(scope="module")
def ref(engine: Engine, fixtures_dir: Path) -> Any:
    return engine.prepare_reference(fixtures_dir / "basic_ref_en.wav", REF_TEXT)


def test_a_packed_batcher_samples_what_a_padded_one_does(engine: Engine, ref: Any) -> None:
    padded = sample(FlowBatcher(engine.model), make_items(engine, ref))
    packed = sample(FlowBatcher(engine.model, packed=True), make_items(engine, ref))
    for a, b in zip(packed, padded, strict=True):
        assert rel_err(a, b) < TOL


@pytest.mark.usefixtures("dynamo_only")
def test_warm_up_builds_the_packed_graph_too(engine: Engine, ref: Any) -> None:
    try:
        engine.use_packing("on")
        engine.compile("on")
        graphs = counters["stats"]["unique_graphs"]
        assert graphs == 4  # one row; rows without a mask; rows with one; packed rows
        sample(engine.new_batcher(), make_items(engine, ref))
        assert counters["stats"]["unique_graphs"] == graphs  # serving compiled nothing
    finally:
        engine.compile("off")
        engine.use_packing("off")


def test_modes_resolve_per_device_and_dtype(engine: Engine) -> None:
    cuda = torch.device("cuda")
    assert packing.resolve_mode("off", cuda, torch.bfloat16) is False
    assert packing.resolve_mode("auto", CPU, torch.float32) is False
    assert packing.resolve_mode("auto", cuda, torch.float32) is False  # no half-precision kernel
    assert packing.resolve_mode("auto", cuda, torch.bfloat16) is packing.HAS_VARLEN
    assert packing.resolve_mode("on", CPU, torch.float32) is True
    with pytest.raises(ValueError, match="'fast' is not one of off, auto, on"):
        packing.resolve_mode("fast", CPU, torch.float32)
    try:
        assert engine.use_packing("on") is True
        assert engine.new_batcher().packed is True
    finally:
        engine.use_packing("off")
    assert engine.new_batcher().packed is False


@torch.inference_mode()
def compare_compiled(model: DiT, lengths: list[int], seed: int) -> float:
    """Relative error of the compiled packed forward against the eager one on the real frames."""
    x, cond, text, time, mask = flow_inputs(model, lengths, seed)
    pack = pack_lengths(lengths, CPU)
    compiled = model(x, cond, text, time, mask, pack)
    runner, model.run_block = model.run_block, run_block
    try:
        eager = model(x, cond, text, time, mask, pack)
    finally:
        model.run_block = runner
    return rel_err(compiled, eager)


@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_packed_blocks_equal_eager_without_recompiling(engine: Engine) -> None:
    model = engine.model
    compiling.set_mode(model, "on")
    try:
        assert compare_compiled(model, [50, 73, 64], seed=0) < COMPILED_TOL
        graphs = counters["stats"]["unique_graphs"]
        assert graphs == 1, "one graph serves every block"
        assert compare_compiled(model, [90, 41], seed=1) < COMPILED_TOL  # other rows, frames
        assert compare_compiled(model, [120, 33, 77, 100], seed=2) < COMPILED_TOL
        assert counters["stats"]["unique_graphs"] == graphs, "no recompile"
    finally:
        compiling.set_mode(model, "off")
