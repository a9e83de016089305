"""The engine's words: normalisation and pronunciations before chunking, chunk timestamps, and
multi-speaker scripts (tiny golden model, CPU)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from f5serve import Engine
from f5serve.engine.pipeline import Segment, chunk_segments
from f5serve.engine.scheduler import Scheduler
from f5serve.engine.script import synthesize_script
from f5serve.errors import InvalidInput

REF_TEXT = "Some call me nature, others call me mother nature."
LONG = "The quick brown fox jumps over the lazy dog near the quiet river bank. " * 4
FAST: dict[str, Any] = {"nfe_steps": 2, "seed": 5}


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@pytest.fixture(scope="module")
def ref_wav(fixtures_dir: Path) -> Path:
    return fixtures_dir / "basic_ref_en.wav"


def test_numbers_are_read_out_unless_normalize_is_off(engine: Engine, ref_wav: Path) -> None:
    said = engine.synthesize("I have 3 apples.", ref_wav, REF_TEXT, **FAST)
    assert said.chunks == ["I have three apples."]
    raw = engine.synthesize("I have 3 apples.", ref_wav, REF_TEXT, normalize=False, **FAST)
    assert raw.chunks == ["I have 3 apples."]


def test_pronunciations_apply_before_normalisation_and_show_in_the_chunks(
    engine: Engine, ref_wav: Path
) -> None:
    result = engine.synthesize(
        "nginx serves 2x more.",
        ref_wav,
        REF_TEXT,
        pronunciations={"nginx": "engine x", r"/(\d)x/": r"\1 times"},
        **FAST,
    )
    assert result.chunks == ["engine x serves two times more."]
    assert result.segments[0].text == "engine x serves two times more."


def test_segments_cover_the_output_and_meet_in_the_cross_fade() -> None:
    sr = 1000
    segments = chunk_segments(["a", "b", "c"], [1000, 500, 800], 0.2, sr)
    # b starts 0.2 s before a ends (the fade): they meet in its middle, 0.9 s
    assert segments == [Segment("a", 0.0, 0.9), Segment("b", 0.9, 1.2), Segment("c", 1.2, 1.9)]
    assert chunk_segments(["a", "b"], [100, 50], 0.2, sr) == [
        Segment("a", 0.0, 0.075),  # the fade shrinks to the shorter chunk
        Segment("b", 0.075, 0.1),
    ]


def test_every_chunk_has_a_segment_ending_with_the_audio(engine: Engine, ref_wav: Path) -> None:
    result = engine.synthesize(LONG, ref_wav, REF_TEXT, **FAST)
    assert len(result.chunks) > 1
    assert [s.text for s in result.segments] == result.chunks
    assert result.segments[0].start == 0.0
    assert result.segments[-1].end == pytest.approx(result.duration, abs=1e-3)
    for before, after in itertools.pairwise(result.segments):
        assert before.start < before.end == after.start < after.end


def test_the_scheduler_reports_the_same_segments(engine: Engine, ref_wav: Path) -> None:
    alone = engine.synthesize(LONG, ref_wav, REF_TEXT, **FAST)
    scheduler = Scheduler(engine, max_batch_frames=1)
    try:
        shared = asyncio.run(scheduler.synthesize(LONG, ref_wav, REF_TEXT, **FAST))
    finally:
        scheduler.close()
    assert shared.segments == alone.segments


def test_a_script_speaks_each_line_in_its_voice_with_pauses(engine: Engine, ref_wav: Path) -> None:
    voices = {None: (ref_wav, REF_TEXT), "alice": engine.prepare_reference(ref_wav, REF_TEXT)}
    result = synthesize_script(
        engine, "Hello there. [alice] I have 2 cats.", voices, speaker_pause=0.5, **FAST
    )
    first = engine.synthesize("Hello there.", ref_wav, REF_TEXT, **FAST)
    assert [s.text for s in result.segments] == ["Hello there.", "I have two cats."]
    assert result.segments[1].start == pytest.approx(first.duration + 0.5, abs=1e-3)
    assert result.segments[-1].end == pytest.approx(result.duration, abs=1e-3)
    gap = result.audio[len(first.audio) : len(first.audio) + 12000]
    assert np.array_equal(result.audio[: len(first.audio)], first.audio) and not gap.any()


def test_a_script_naming_an_unknown_voice_fails_before_synthesis(
    engine: Engine, ref_wav: Path
) -> None:
    with pytest.raises(InvalidInput, match="bob"):
        synthesize_script(engine, "[bob] Hi.", {None: (ref_wav, REF_TEXT)}, **FAST)
