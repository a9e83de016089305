"""The asynchronous scheduler: concurrent requests batched, equal to serving each alone."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from f5serve import Engine, Progress
from f5serve.engine.mel import SAMPLE_RATE
from f5serve.engine.scheduler import Scheduler, StreamedChunk
from f5serve.errors import InvalidText, Overloaded

REF_TEXT = "Some call me nature, others call me mother nature."
LONG = "The quick brown fox jumps over the lazy dog near the quiet river bank. " * 3
TOL = 1e-4


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@pytest.fixture
def scheduler(engine: Engine) -> Iterator[Scheduler]:
    sched = Scheduler(engine, max_batch_frames=1 << 20)  # everything batched together
    yield sched
    sched.close()


@pytest.fixture(scope="module")
def ref_wav(fixtures_dir: Path) -> Path:
    return fixtures_dir / "basic_ref_en.wav"


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_concurrent_requests_equal_each_served_alone(
    engine: Engine, scheduler: Scheduler, ref_wav: Path
) -> None:
    requests = [
        ("Hello there.", {"seed": 1}),
        (LONG, {"seed": 2}),
        ("A medium length sentence for the batch.", {"seed": 3, "cfg_strength": 0.0}),
        ("Slower speech with more steps.", {"seed": 4, "speed": 0.8, "nfe_steps": 6}),
    ]

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                scheduler.synthesize(t, ref_wav, REF_TEXT, **{"nfe_steps": 4, **o})
                for t, o in requests
            )
        )

    results = asyncio.run(main())
    for (text, opts), got in zip(requests, results, strict=True):
        alone = engine.synthesize(text, ref_wav, REF_TEXT, **{"nfe_steps": 4, **opts})
        assert got.chunks == alone.chunks
        assert got.audio.shape == alone.audio.shape
        assert rel(got.audio, alone.audio) <= TOL
        assert 0 < got.timings.sampling <= got.timings.total
        assert got.timings.vocoder > 0
    assert scheduler.stats()["active_chunks"] == 0


def test_stream_yields_first_chunk_before_the_last_is_done(engine: Engine, ref_wav: Path) -> None:
    sched = Scheduler(engine, max_batch_frames=1)  # one chunk at a time: chunk 1 finishes first
    seen: list[Progress] = []

    async def main() -> tuple[list[np.ndarray], list[int]]:
        parts, done_at_part = [], []
        async for part in sched.stream(
            LONG, ref_wav, REF_TEXT, nfe_steps=4, seed=9, progress=seen.append
        ):
            parts.append(part)
            done_at_part.append(seen[-1].done if seen else 0)
        return parts, done_at_part

    try:
        parts, done_at_part = asyncio.run(main())
    finally:
        sched.close()
    whole = engine.synthesize(LONG, ref_wav, REF_TEXT, nfe_steps=4, seed=9)
    assert len(whole.chunks) >= 2
    assert len(parts) >= 2
    assert done_at_part[0] < 4 * len(whole.chunks)  # audio arrived while steps remained
    assert rel(np.concatenate(parts), whole.audio) <= TOL


async def until(condition: Callable[[], bool], timeout: float = 120) -> None:
    """Wait until ``condition()`` holds (failing after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)


def in_scheduler(sched: Scheduler) -> float:
    """Chunks waiting or running."""
    stats = sched.stats()
    return stats["queued_chunks"] + stats["active_chunks"]


def test_cancelled_request_frees_its_slots(scheduler: Scheduler, ref_wav: Path) -> None:
    seen: list[Progress] = []

    async def main() -> Any:
        task = asyncio.create_task(
            scheduler.synthesize(
                LONG * 2, ref_wav, REF_TEXT, nfe_steps=32, seed=1, progress=seen.append
            )
        )
        while not seen:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: scheduler.stats()["active_chunks"] == 0)
        after = await scheduler.synthesize("Still serving.", ref_wav, REF_TEXT, nfe_steps=2, seed=2)
        return after

    after = asyncio.run(main())
    assert scheduler.stats()["active_chunks"] == 0
    assert scheduler.stats()["queued_chunks"] == 0
    assert len(seen) < 32 * seen[0].chunks / 2, (
        "the cancelled request must stop long before finishing"
    )
    assert after.duration > 0


def test_first_come_first_served_under_a_tight_budget(engine: Engine, ref_wav: Path) -> None:
    sched = Scheduler(engine, max_batch_frames=1)
    order: list[str] = []

    async def run(name: str, text: str) -> None:
        await sched.synthesize(text, ref_wav, REF_TEXT, nfe_steps=2, seed=1)
        order.append(name)

    async def main() -> None:
        first = asyncio.create_task(run("long", LONG))
        await until(lambda: in_scheduler(sched) > 0)  # the long request is queued first
        await asyncio.gather(first, *(run(f"short{i}", "Hi there.") for i in range(3)))

    try:
        asyncio.run(main())
    finally:
        sched.close()
    assert order[0] == "long"
    assert sorted(order[1:]) == ["short0", "short1", "short2"]


def test_full_backlog_is_refused_with_a_retry_estimate(engine: Engine, ref_wav: Path) -> None:
    sched = Scheduler(engine, max_batch_frames=1, max_queued_requests=1)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(sched.synthesize(LONG, ref_wav, REF_TEXT, nfe_steps=8, seed=i) for i in range(4)),
            return_exceptions=True,
        )

    try:
        results = asyncio.run(main())
    finally:
        sched.close()
    refused = [r for r in results if isinstance(r, Overloaded)]
    served = [r for r in results if not isinstance(r, BaseException)]
    assert refused and served
    assert all(r.retry_after >= 1 for r in refused)
    assert refused[0].to_dict()["code"] == "overloaded"
    assert "retry" in refused[0].message


def test_bad_text_fails_fast(scheduler: Scheduler, ref_wav: Path) -> None:
    with pytest.raises(InvalidText):
        asyncio.run(scheduler.synthesize("...", ref_wav, REF_TEXT))


def test_streamed_chunks_carry_their_text_and_times_and_seams_equal_the_cross_fade(
    engine: Engine, scheduler: Scheduler, ref_wav: Path
) -> None:
    async def main() -> list[StreamedChunk]:
        stream = scheduler.stream_chunks(LONG, ref_wav, REF_TEXT, nfe_steps=4, seed=5)
        return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    whole = engine.synthesize(LONG, ref_wav, REF_TEXT, nfe_steps=4, seed=5)
    assert [c.text for c in chunks] == whole.chunks and len(chunks) >= 2
    assert [c.index for c in chunks] == list(range(len(chunks)))
    streamed = np.concatenate([c.audio for c in chunks])
    assert rel(streamed, whole.audio) <= TOL
    fade = 0.15  # the default cross_fade; every chunk here is longer than that
    # the same timeline as the whole result's segments (which end mid-fade; a streamed chunk's
    # end is where its audio ends, the next chunk not being known yet)
    assert [c.start for c in chunks] == [s.start for s in whole.segments]
    assert chunks[0].start == 0
    assert chunks[-1].end == pytest.approx(len(whole.audio) / SAMPLE_RATE, abs=1e-3)
    sent = 0
    for before, after in itertools.pairwise(chunks):
        assert after.start == pytest.approx(before.end - fade / 2, abs=1e-3)
        sent += len(before.audio)
        fade_in = round((before.end - fade) * SAMPLE_RATE)
        assert abs(sent - fade_in) <= SAMPLE_RATE // 1000  # the fade is held back until blended
        seam = slice(sent, round(before.end * SAMPLE_RATE))
        assert np.abs(streamed[seam] - whole.audio[seam]).max() <= 1e-5
