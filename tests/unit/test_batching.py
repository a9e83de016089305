"""Exact batching: an item's result does not depend on what it is batched with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from f5serve import Engine, SynthesisOptions
from f5serve.engine import sampler
from f5serve.engine.batching import FlowBatcher, FlowItem
from f5serve.engine.graphs import StepGraphs
from f5serve.engine.pipeline import CrossFader, cross_fade_join

REF_TEXT = "Some call me nature, others call me mother nature."
TOL = 1e-4


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@pytest.fixture(scope="module")
def ref(engine: Engine, fixtures_dir: Path) -> Any:
    return engine.prepare_reference(fixtures_dir / "basic_ref_en.wav", REF_TEXT)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def make(engine: Engine, ref: Any, text: str, seed: int, **opts: Any) -> FlowItem:
    return engine.make_item(ref, text, seed, SynthesisOptions(**{"nfe_steps": 6, **opts}))


def run_alone(engine: Engine, item: FlowItem) -> torch.Tensor:
    batcher = FlowBatcher(engine.model)
    batcher.add(item)
    while batcher.items:
        batcher.step()
    return item.result()


TEXTS = [
    ("Short one.", {}),
    ("A considerably longer sentence that needs many more frames to say.", {}),
    ("No guidance for this medium sentence.", {"cfg_strength": 0.0}),
    ("Different step count and speed here.", {"nfe_steps": 9, "speed": 0.7}),
]


def test_items_of_different_lengths_and_options_batch_exactly(engine: Engine, ref: Any) -> None:
    alone = [run_alone(engine, make(engine, ref, t, 11 + i, **o)) for i, (t, o) in enumerate(TEXTS)]
    items = [make(engine, ref, t, 11 + i, **o) for i, (t, o) in enumerate(TEXTS)]
    assert len({it.frames for it in items}) == len(items), "lengths must differ"
    batcher = FlowBatcher(engine.model)
    for item in items:
        batcher.add(item)
    finished: list[FlowItem] = []
    while batcher.items:
        finished += batcher.step()
    assert {id(i) for i in finished} == {id(i) for i in items}
    for item, expected in zip(items, alone, strict=True):
        assert rel_err(item.result(), expected) <= TOL


def test_items_joining_a_running_batch_match_alone(engine: Engine, ref: Any) -> None:
    first, late = TEXTS[1][0], TEXTS[0][0]
    expected_first = run_alone(engine, make(engine, ref, first, 5))
    expected_late = run_alone(engine, make(engine, ref, late, 6))
    a, b = make(engine, ref, first, 5), make(engine, ref, late, 6)
    batcher = FlowBatcher(engine.model)
    batcher.add(a)
    batcher.step()
    batcher.step()
    batcher.add(b)  # joins at step 2 of a, with its own time value
    done = []
    while batcher.items:
        done += [it is a for it in batcher.step()]
    assert done == [True, False]  # a finishes two steps before b
    assert rel_err(a.result(), expected_first) <= TOL
    assert rel_err(b.result(), expected_late) <= TOL


def test_batched_vocoding_matches_one_at_a_time(engine: Engine) -> None:
    gen = torch.Generator().manual_seed(0)
    mels = [torch.randn(n, 100, generator=gen) * 2 - 5 for n in (40, 97, 63)]
    batched = engine.vocoder.decode_batch(mels)
    with torch.inference_mode():
        single = [engine.vocoder(m.transpose(0, 1)[None])[0] for m in mels]
    for b, s, m in zip(batched, single, mels, strict=True):
        assert b.shape == (m.shape[0] * 256,)
        assert rel_err(b, s) <= TOL


def test_one_batched_vocoder_pass_equals_each_mel_alone_to_1e_5(engine: Engine) -> None:
    """The tiny golden Vocos: one backbone and one head call for all, each cut exactly."""
    gen = torch.Generator().manual_seed(1)
    lengths = (3, 40, 97, 97, 63, 1)
    mels = [torch.randn(n, 100, generator=gen) * 2 - 5 for n in lengths]
    vocoder = engine.vocoder
    calls: list[tuple[str, int]] = []
    hooks = [
        part.register_forward_hook(
            lambda _m, args, _o, name=name: calls.append((name, len(args[0])))
        )
        for name, part in (("backbone", vocoder.backbone), ("head", vocoder.head))
    ]
    try:
        batched = vocoder.decode_batch(mels)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [("backbone", len(mels)), ("head", len(mels))]
    with torch.inference_mode():
        for b, m in zip(batched, mels, strict=True):
            alone = vocoder(m.transpose(0, 1)[None])[0]
            assert b.shape == alone.shape == (m.shape[0] * 256,)
            assert rel_err(b, alone) <= 1e-5


def test_engine_batches_its_own_chunks_under_a_small_frame_budget(
    tiny_model_files: dict[str, Any], fixtures_dir: Path
) -> None:
    text = "The quick brown fox jumps over the lazy dog near the quiet river bank. " * 3
    wide = Engine.from_files(**tiny_model_files, device="cpu")
    wide.max_batch_frames = 1 << 20  # all chunks in one batch
    narrow = Engine.from_files(**tiny_model_files, device="cpu")
    narrow.max_batch_frames = 1  # one chunk at a time (the CPU default)
    ref_wav = fixtures_dir / "basic_ref_en.wav"
    a = wide.synthesize(text, ref_wav, REF_TEXT, nfe_steps=4, seed=3)
    b = narrow.synthesize(text, ref_wav, REF_TEXT, nfe_steps=4, seed=3)
    assert len(a.chunks) >= 2
    assert a.audio.shape == b.audio.shape
    assert np.linalg.norm(a.audio - b.audio) / np.linalg.norm(b.audio) <= TOL


@pytest.mark.parametrize("lengths", [[5000, 7000, 300], [100, 50, 20000], [3000]])
def test_streamed_cross_fade_equals_the_joined_audio(lengths: list[int]) -> None:
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    fader = CrossFader(0.15, 24000)
    parts = [fader.push(w) for w in waves] + [fader.finish()]
    joined = cross_fade_join(waves, 0.15, 24000)
    assert np.array_equal(np.concatenate(parts), joined)
    total = lengths[0]
    for n in lengths[1:]:  # each join overlaps min(0.15 s, audio so far, next chunk)
        total += n - min(3600, total, n)
    assert len(joined) == total


def test_flow_step_is_the_guided_euler_rule_and_leaves_its_inputs_alone() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 2, generator=gen)
    flow = torch.randn(5, 5, 2, generator=gen)  # 3 conditional rows, then 2 unconditional
    guided = torch.tensor([0, 2])
    cfg = torch.tensor([2.0, 0.5]).view(-1, 1, 1)
    dt = torch.tensor([0.1, 0.2, 0.3])
    before = (x.clone(), flow.clone())
    out = sampler.flow_step(x, flow, guided, cfg, dt)
    v = flow[:3].clone()
    v[0] = flow[0] + (flow[0] - flow[3]) * 2.0
    v[2] = flow[2] + (flow[2] - flow[4]) * 0.5
    torch.testing.assert_close(out, x + dt[:, None, None] * v)
    assert torch.equal(x, before[0]) and torch.equal(flow, before[1])
    unguided = sampler.flow_step(x, flow[:3], torch.tensor([], dtype=torch.long), cfg[:0], dt)
    torch.testing.assert_close(unguided, x + dt[:, None, None] * flow[:3])


class ReplayingGraphs(StepGraphs):
    """CUDA graphs' protocol on the CPU: a captured step is run again at each replay."""

    def __init__(self) -> None:  # no CUDA stream
        self.enabled = True
        self.warm_ups = self.captures = self.replays = self.releases = 0

    def warm_up(self, step: Callable[[], None]) -> None:
        self.warm_ups += 1
        step()

    def capture(self, step: Callable[[], None]) -> Callable[[], None]:
        self.captures += 1

        def replay() -> None:
            self.replays += 1
            step()

        return replay

    def release(self) -> None:
        self.releases += 1


def run_with_joins(engine: Engine, ref: Any, graphs: StepGraphs | None) -> list[torch.Tensor]:
    """Three items of different lengths and step counts; two join a running batch."""
    items = [make(engine, ref, t, 21 + i, **o) for i, (t, o) in enumerate(TEXTS[1:])]
    batcher = FlowBatcher(engine.model, graphs)
    batcher.add(items[0])
    for _ in range(4):
        batcher.step()
    batcher.add(items[1])
    batcher.step()
    batcher.add(items[2])
    while batcher.items:
        batcher.step()
    return [it.result() for it in items]


def test_replayed_steps_equal_eager_steps_across_membership_changes(
    engine: Engine, ref: Any
) -> None:
    graphs = ReplayingGraphs()
    replayed = run_with_joins(engine, ref, graphs)
    eager = run_with_joins(engine, ref, None)
    for r, e in zip(replayed, eager, strict=True):
        assert torch.equal(r, e)
    # one warm-up per layout, captures only where enough steps remain, and none kept stale
    assert graphs.warm_ups >= 3 and graphs.captures >= 2 and graphs.replays > graphs.captures
    assert graphs.releases >= 2


def test_a_failed_capture_falls_back_to_eager_steps(engine: Engine, ref: Any) -> None:
    class Failing(ReplayingGraphs):
        def capture(self, step: Callable[[], None]) -> None:  # type: ignore[override]
            self.captures += 1
            self.enabled = False

    graphs = Failing()
    replayed, eager = run_with_joins(engine, ref, graphs), run_with_joins(engine, ref, None)
    assert all(torch.equal(a, b) for a, b in zip(replayed, eager, strict=True))
    assert graphs.captures == 1 and graphs.replays == 0
