"""What the scheduler batches and in which order, observed directly: the requests in each flow
step's batch, and the order in which their chunks are admitted."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from f5serve import Engine
from f5serve.engine.pipeline import Reference
from f5serve.engine.scheduler import Scheduler

REF_TEXT = "Some call me nature, others call me mother nature."
LONG = "The quick brown fox jumps over the lazy dog near the quiet river bank. " * 3
SEEDS = (11, 22, 33)  # one per request: how the spies tell requests apart


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@pytest.fixture(scope="module")
def reference(engine: Engine, fixtures_dir: Path) -> Reference:
    return engine.prepare_reference(fixtures_dir / "basic_ref_en.wav", REF_TEXT)


def requests_seen(sched: Scheduler) -> int:
    return len({id(c.request) for c in [*sched._pending, *sched._active.values()]})


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """Spies: the seeds of the requests in each step's batch, its number of chunks, and the
    seed of each chunk in the order it was admitted. The first step waits until all requests
    are queued."""
    seen: dict[str, list[Any]] = {"batches": [], "sizes": [], "admitted": []}
    step, admit = Scheduler._step, Scheduler._admit
    first = threading.Event()

    def spy_step(self: Scheduler) -> None:
        if not first.is_set():
            first.set()
            with self._wake:
                self._wake.wait_for(lambda: requests_seen(self) >= len(SEEDS), timeout=60)
                self._admit()
        seen["batches"].append({c.request.prepared.seed for c in self._active.values()})
        seen["sizes"].append(len(self._active))
        step(self)

    def spy_admit(self: Scheduler) -> None:
        before = set(self._active)
        admit(self)
        seen["admitted"] += [
            c.request.prepared.seed for k, c in self._active.items() if k not in before
        ]

    monkeypatch.setattr(Scheduler, "_step", spy_step)
    monkeypatch.setattr(Scheduler, "_admit", spy_admit)
    yield seen


def run_in_order(
    sched: Scheduler, reference: Reference, texts: list[str], *, stream: bool = False
) -> None:
    """Submit one request per text (streamed, or for the whole file), each once the previous
    one is queued, and wait for all."""

    async def one(text: str, seed: int) -> None:
        if not stream:
            await sched.synthesize(text, reference, nfe_steps=2, seed=seed)
            return
        async for _ in sched.stream(text, reference, nfe_steps=2, seed=seed):
            pass

    async def main() -> None:
        tasks = []
        for n, (text, seed) in enumerate(zip(texts, SEEDS, strict=True), start=1):
            tasks.append(asyncio.create_task(one(text, seed)))
            # it reaches the queue before the next one is submitted (its set-up runs in a thread)
            deadline = time.monotonic() + 120
            while requests_seen(sched) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        # a scheduler thread that died would leave them waiting: fail instead of hanging
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)

    try:
        asyncio.run(main())
    finally:
        sched.close()


def test_concurrent_requests_share_one_batch(
    engine: Engine, reference: Reference, observed: dict[str, list[Any]]
) -> None:
    sched = Scheduler(engine, max_batch_frames=1 << 20)
    run_in_order(sched, reference, ["Hello there.", "A second voice.", "And a third one."])
    assert observed["batches"][0] == set(SEEDS)  # all three in the first flow step


def test_chunks_that_finish_in_one_step_are_vocoded_in_one_call(
    engine: Engine, reference: Reference, observed: dict[str, list[Any]]
) -> None:
    calls: list[tuple[str, int]] = []
    vocoder = engine.vocoder
    hooks = [
        part.register_forward_hook(
            lambda _m, args, _o, name=name: calls.append((name, len(args[0])))
        )
        for name, part in (("backbone", vocoder.backbone), ("head", vocoder.head))
    ]
    sched = Scheduler(engine, max_batch_frames=1 << 20)
    try:
        run_in_order(sched, reference, ["Hello there.", "A second voice.", "And a third one."])
    finally:
        for hook in hooks:
            hook.remove()
    assert observed["batches"] == [set(SEEDS)] * 2  # together for both steps: they end at once
    assert calls == [("backbone", 3), ("head", 3)]


def test_admission_is_first_come_first_served_for_whole_files(
    engine: Engine, reference: Reference, observed: dict[str, list[Any]]
) -> None:
    sched = Scheduler(engine, max_batch_frames=1)  # one chunk at a time
    run_in_order(sched, reference, [LONG, "Hi there.", "Hello again."])
    admitted = observed["admitted"]
    assert admitted.count(SEEDS[0]) >= 2  # the long request has several chunks
    order = list(dict.fromkeys(admitted))
    assert order == list(SEEDS), admitted
    last_long = len(admitted) - 1 - admitted[::-1].index(SEEDS[0])
    assert last_long < admitted.index(SEEDS[1])  # all its chunks before the later requests
    assert all(len(batch) == 1 for batch in observed["batches"])


def test_streams_first_chunks_join_before_the_later_chunks_of_a_stream_already_playing(
    engine: Engine, reference: Reference, observed: dict[str, list[Any]]
) -> None:
    sched = Scheduler(engine, max_batch_frames=1)  # one chunk at a time
    run_in_order(sched, reference, [LONG, "Hi there.", "Hello again."], stream=True)
    admitted = observed["admitted"]
    assert admitted.count(SEEDS[0]) >= 2  # the long stream has several chunks
    # its first chunk, then the others' (their listeners wait for them), then the rest of it
    assert admitted == [SEEDS[0], SEEDS[1], SEEDS[2]] + [SEEDS[0]] * (len(admitted) - 3)
    assert all(len(batch) == 1 for batch in observed["batches"])


def test_without_opener_priority_streams_are_first_come_first_served(
    engine: Engine, reference: Reference, observed: dict[str, list[Any]]
) -> None:
    sched = Scheduler(engine, max_batch_frames=1, openers="off")
    run_in_order(sched, reference, [LONG, "Hi there.", "Hello again."], stream=True)
    admitted = observed["admitted"]
    assert admitted == [SEEDS[0]] * (len(admitted) - 2) + [SEEDS[1], SEEDS[2]]


def test_openers_alone_keep_later_chunks_out_of_their_batch(
    engine: Engine, reference: Reference, observed: dict[str, list[Any]]
) -> None:
    sched = Scheduler(engine, max_batch_frames=1 << 20, openers="alone")
    run_in_order(sched, reference, [LONG, "Hi there.", "Hello again."], stream=True)
    admitted, sizes = observed["admitted"], observed["sizes"]
    later = len(admitted) - 3  # the long stream's chunks after its first
    assert later >= 1
    assert admitted == [SEEDS[0], SEEDS[1], SEEDS[2]] + [SEEDS[0]] * later
    # the three openers ran alone (2 steps each), then the long stream's other chunks together
    assert sizes == [3, 3, later, later]


def test_openers_run_in_waves_of_opener_frames(
    engine: Engine, reference: Reference, observed: dict[str, list[Any]]
) -> None:
    # a wave holds one opener: the first of a wave always fits, a second exceeds one frame
    sched = Scheduler(engine, max_batch_frames=1 << 20, openers="alone", opener_frames=1)
    run_in_order(sched, reference, [LONG, "Hi there.", "Hello again."], stream=True)
    admitted, sizes = observed["admitted"], observed["sizes"]
    later = len(admitted) - 3
    assert later >= 1
    assert admitted == [SEEDS[0], SEEDS[1], SEEDS[2]] + [SEEDS[0]] * later
    # each opener ran alone (2 steps each), one after another, then the long stream's others
    assert sizes == [1, 1, 1, 1, 1, 1, later, later]
    assert observed["batches"][:6] == [{s} for s in SEEDS for _ in range(2)]


def test_an_unknown_opener_mode_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="openers"):
        Scheduler(engine, openers="last")
    with pytest.raises(ValueError, match="opener_frames"):
        Scheduler(engine, opener_frames=0)
