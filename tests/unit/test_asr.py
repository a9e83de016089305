"""Speech recognition: the error rate, the quality check's policy, transcribing a reference and
checking chunks in the engine and the scheduler (a fake recogniser), the real backend on a tiny
random Whisper, and the clear error without the extra."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from f5serve import Engine
from f5serve.engine import asr
from f5serve.engine.asr import Attempt, LazyRecognizer, Transcript, cer
from f5serve.engine.options import SynthesisOptions
from f5serve.engine.scheduler import Scheduler
from f5serve.errors import AsrUnavailable, InvalidText, ModelUnavailable
from tiny_whisper import build_tiny_whisper

REF_TEXT = "Some call me nature, others call me mother nature."
LONG = "The quick brown fox jumps over the lazy dog near the quiet river bank. " * 4
FAST: dict[str, Any] = {"nfe_steps": 2, "seed": 5}


class ScriptedRecognizer:
    """Hears, call after call, the texts it was given; records what it was given to hear."""

    def __init__(self, heard: Iterable[str]) -> None:
        self.heard = list(heard)
        self.calls: list[tuple[int, int, str | None]] = []

    def transcribe(
        self, audio: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        self.calls.append((len(audio), sample_rate, language))
        return Transcript(self.heard[len(self.calls) - 1])


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@pytest.fixture(scope="module")
def ref_wav(fixtures_dir: Path) -> Path:
    return fixtures_dir / "basic_ref_en.wav"


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"))


# --------------------------------------------------------------------------- error rate


@pytest.mark.parametrize(
    ("expected", "heard", "language", "rate"),
    [
        ("I have three apples.", "I have three apples.", "en", 0.0),
        ("I have three apples.", "i HAVE three apples", "en", 0.0),  # case, punctuation
        ("I have 3 apples.", "I have three apples.", "en", 0.0),  # read as it was spoken
        ("abcd", "abxd", "en", 0.25),  # one substitution in four letters
        ("abcd", "", "en", 1.0),
        ("abcd", "abcdefgh", "en", 1.0),  # insertions count too
        ("你好世界", "你好视界", "zh", 0.25),  # characters, not words
        ("", "", "en", 0.0),
        ("...", "hello", "en", 1.0),  # nothing to say, something heard
    ],
)
def test_the_character_error_rate(expected: str, heard: str, language: str, rate: float) -> None:
    assert cer(expected, heard, language) == rate


def test_the_next_try_takes_the_next_seed_until_one_passes_or_the_tries_run_out() -> None:
    options = SynthesisOptions(quality_check=True, max_tries=3, cer_threshold=0.2)
    bad, good = Attempt(7, 0.5, "x"), Attempt(8, 0.1, "y")
    assert asr.next_seed([bad], options) == 8
    assert asr.next_seed([bad, good], options) is None  # passed
    assert asr.next_seed([bad, Attempt(8, 0.9, ""), Attempt(9, 0.6, "")], options) is None
    assert asr.next_seed([Attempt(7, 0.2, "")], options) is None  # the threshold itself passes
    assert asr.best([bad, Attempt(8, 0.9, ""), Attempt(9, 0.4, "")]) == 2
    assert asr.best([Attempt(1, 0.5, ""), Attempt(2, 0.5, "")]) == 0  # the earliest on a tie


# --------------------------------------------------------------------------- without the extra


def test_without_the_extra_speech_recognition_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # the import fails
    assert not asr.installed()
    with pytest.raises(AsrUnavailable, match=r"pip install 'f5serve\[asr\]'"):
        LazyRecognizer().load()
    with pytest.raises(AsrUnavailable, match=r"^what was asked$"):
        asr.require(LazyRecognizer(), "what was asked")
    with pytest.raises(AsrUnavailable, match=r"^no recogniser$"):
        asr.require(None, "no recogniser")


def test_a_missing_model_folder_fails_at_once_and_is_not_retried_at_once(tmp_path: Path) -> None:
    recognizer = LazyRecognizer(str(tmp_path / "nothing-here"))
    with pytest.raises(ModelUnavailable, match="F5SERVE_ASR_MODEL") as first:
        recognizer.load()
    with pytest.raises(ModelUnavailable) as second:
        recognizer.load()
    assert second.value is first.value  # remembered, not tried again


# --------------------------------------------------------------------------- the engine


def test_a_reference_without_transcript_is_heard_as_the_engine_uses_it(
    engine: Engine, ref_wav: Path
) -> None:
    heard = ScriptedRecognizer(["Some call me nature"])
    ref = engine.prepare_reference(ref_wav, "", SynthesisOptions(), heard, "en")
    assert ref.transcript == "Some call me nature. "
    [(samples, rate, language)] = heard.calls
    assert (samples, rate, language) == (ref.samples, 24_000, "en")  # the clip after clean-up


def test_without_a_recogniser_the_engine_still_needs_the_transcript(
    engine: Engine, ref_wav: Path
) -> None:
    with pytest.raises(InvalidText, match="reference text is empty"):
        engine.prepare_reference(ref_wav, "")
    with pytest.raises(AsrUnavailable, match="quality_check"):
        engine.synthesize("Hello.", ref_wav, REF_TEXT, quality_check=True, **FAST)


def test_a_chunk_heard_wrong_is_made_again_with_the_next_seed(
    engine: Engine, ref_wav: Path
) -> None:
    text = "I have 3 apples."
    heard = ScriptedRecognizer(["I have tree", "I have three apples"])
    checked = engine.synthesize(
        text, ref_wav, REF_TEXT, quality_check=True, recognizer=heard, **FAST
    )
    [segment] = checked.segments
    assert [a.seed for a in segment.attempts] == [5, 6]
    assert segment.attempts[0].cer > 0.2 and segment.attempts[1].cer == 0.0
    assert [a.heard for a in segment.attempts] == heard.heard
    assert checked.seed == 5
    second = engine.synthesize(text, ref_wav, REF_TEXT, **{**FAST, "seed": 6})
    np.testing.assert_array_equal(checked.audio, second.audio)  # the try that passed
    assert second.segments[0].attempts == ()  # no check asked, nothing reported


def test_at_most_max_tries_and_the_best_is_kept(engine: Engine, ref_wav: Path) -> None:
    heard = ScriptedRecognizer(["x", "I have thr", "nothing", "never asked"])
    checked = engine.synthesize(
        "I have 3 apples.",
        ref_wav,
        REF_TEXT,
        quality_check=True,
        max_tries=3,
        recognizer=heard,
        **FAST,
    )
    [segment] = checked.segments
    assert [a.seed for a in segment.attempts] == [5, 6, 7] and len(heard.calls) == 3
    best = engine.synthesize("I have 3 apples.", ref_wav, REF_TEXT, **{**FAST, "seed": 6})
    np.testing.assert_array_equal(checked.audio, best.audio)  # the lowest error rate


def test_the_scheduler_checks_chunk_by_chunk_as_the_engine_does(
    engine: Engine, ref_wav: Path
) -> None:
    chunks = engine.synthesize(LONG, ref_wav, REF_TEXT, **FAST).chunks
    assert len(chunks) > 1
    # the engine hears every first try, then the tries again; the scheduler chunk by chunk
    by_engine = ScriptedRecognizer(["garbled", *chunks[1:], chunks[0]])
    by_scheduler = ScriptedRecognizer(["garbled", *chunks])
    options = SynthesisOptions(quality_check=True, **FAST)
    alone = engine.synthesize(LONG, ref_wav, REF_TEXT, options=options, recognizer=by_engine)

    async def scheduled() -> tuple[Any, list[Any]]:
        scheduler = Scheduler(engine)
        try:
            result = await scheduler.synthesize(
                LONG, ref_wav, REF_TEXT, options=options, recognizer=by_scheduler
            )
            again = ScriptedRecognizer(["garbled", *chunks])
            streamed = [
                c
                async for c in scheduler.stream_chunks(
                    LONG, ref_wav, REF_TEXT, options=options, recognizer=again
                )
            ]
            return result, streamed
        finally:
            scheduler.close()

    result, streamed = asyncio.run(scheduled())
    np.testing.assert_array_equal(result.audio, alone.audio)
    for got in (result.segments, alone.segments, streamed):
        tries = [[a.seed for a in s.attempts] for s in got]
        assert tries == [[5, 6], *[[5 + i] for i in range(1, len(chunks))]]
    np.testing.assert_array_equal(np.concatenate([c.audio for c in streamed]), alone.audio)


# --------------------------------------------------------------------------- the real backend


def test_the_whisper_backend_runs_on_a_tiny_random_model(tiny_whisper: Path) -> None:
    recognizer = LazyRecognizer(str(tiny_whisper), "cpu")
    noise = np.random.default_rng(0).standard_normal(24_000 * 2).astype(np.float32) * 0.1
    heard = recognizer.transcribe(noise, 24_000, "en")  # a language it does not know: detected
    assert isinstance(heard.text, str) and heard.text.strip()  # garbage, but words of a kind


def test_the_engine_checks_chunks_with_the_real_backend(
    engine: Engine, ref_wav: Path, tiny_whisper: Path
) -> None:
    recognizer = LazyRecognizer(str(tiny_whisper), "cpu")
    result = engine.synthesize(
        "Hello there.",
        ref_wav,
        "",  # heard by the same recogniser
        quality_check=True,
        cer_threshold=0,
        max_tries=2,
        recognizer=recognizer,
        **FAST,
    )
    [segment] = result.segments
    assert [a.seed for a in segment.attempts] == [5, 6]  # garbage never matches exactly
    assert all(isinstance(a.heard, str) and a.cer > 0 for a in segment.attempts)
