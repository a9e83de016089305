"""Word timestamps: the map from the text as chunked back to the text as written (through
pronunciations and normalisation), the alignment of recognised words, and the timed words of
a chunk (a fake recogniser's words with known times); then the engine and the scheduler with a
fake recogniser, and the real backend on a tiny random Whisper."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from f5serve import Engine
from f5serve.engine.asr import LazyRecognizer, Transcript, Word
from f5serve.engine.normalize import normalize_mapped, normalize_text
from f5serve.engine.options import SynthesisOptions
from f5serve.engine.pipeline import prepare_text
from f5serve.engine.pronounce import Lexicon
from f5serve.engine.scheduler import Scheduler
from f5serve.engine.textmap import MappedText
from f5serve.engine.words import WordMap, align, spoken, word_spans
from f5serve.errors import AsrUnavailable
from tiny_whisper import build_tiny_whisper

REF_TEXT = "Some call me nature, others call me mother nature."
FAST: dict[str, Any] = {"nfe_steps": 2, "seed": 5}


def heard_evenly(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    """The words of ``text`` (split at spaces) as a recogniser that heard each in ``step``
    seconds would give them, the first at ``start``."""
    return [
        Word(w, round(start + i * step, 3), round(start + i * step + step - 0.1, 3))
        for i, w in enumerate(text.split())
    ]


def times(words: Sequence[Word]) -> list[tuple[str, float | None, float | None]]:
    return [(w.word, w.start, w.end) for w in words]


# --------------------------------------------------------------------------- the text map


@pytest.mark.parametrize(
    ("original", "language", "lexicon", "said", "piece", "source"),
    [
        ("I have 12 apples.", "en", {}, "I have twelve apples.", "twelve", "12"),
        ("I have 12 apples.", "en", {}, "I have twelve apples.", "apples", "apples"),
        ("Dr. Who", "en", {}, "Doctor Who", "Doctor", "Dr."),
        ("It is 21%.", "en", {}, "It is twenty-one percent.", "twenty-one percent", "21%"),
        ("Run nginx now", "en", {"nginx": "engine x"}, "Run engine x now", "engine x", "nginx"),
        # a pronunciation, then normalisation of what it wrote
        ("Buy 2k", "en", {r"/(\d)k/": r"\1 thousand"}, "Buy two thousand", "two thousand", "2k"),
        ("我有3个苹果", "zh", {}, "我有三个苹果", "三", "3"),
        ("我有3个苹果", "zh", {}, "我有三个苹果", "苹果", "苹果"),
        ("去重庆", "zh", {"重庆": "{chong2 qing4}"}, "去{chong2 qing4}", "qing4", "重庆"),
    ],
)
def test_the_text_as_chunked_knows_where_each_piece_came_from(
    original: str, language: str, lexicon: dict[str, str], said: str, piece: str, source: str
) -> None:
    options = SynthesisOptions()
    mapped = prepare_text(original, options, language, Lexicon.parse(lexicon))
    assert mapped.text == said
    at = said.index(piece)
    start, end = mapped.origin(at, at + len(piece))
    assert original[start:end] == source


def test_the_mapped_normalisation_writes_the_same_text() -> None:
    for text in ("On 2024-03-05 at 3:30pm it cost $5.50, 5-10 km away.", "第3章有25%"):
        assert normalize_mapped(MappedText.of(text), "en").text == normalize_text(text, "en")
    assert MappedText.of("").origin(0, 0) == (0, 0)


# --------------------------------------------------------------------------- alignment


@pytest.mark.parametrize(
    ("expected", "heard", "pairs"),
    [
        ("a b c", "a b c", [0, 1, 2]),
        ("a b c d", "a c d", [0, None, 1, 2]),  # b missed
        ("a b c", "a uh b c", [0, 2, 3]),  # an extra word heard
        ("a b c", "a x c", [0, 1, 2]),  # misheard: paired where it was heard
        ("a b", "", [None, None]),
        ("", "a", []),
    ],
)
def test_alignment_pairs_by_least_edits(expected: str, heard: str, pairs: list[int | None]) -> None:
    assert align(expected.split(), heard.split()) == pairs


def test_words_and_what_they_are_compared_as() -> None:
    text = "“Hello,” she said — 你好！ 21st."
    assert [text[s:e] for s, e in word_spans(text)] == ["Hello", "she", "said", "你", "好", "21st"]
    assert spoken("21", "en") == spoken("twenty-one", "en") == ["twenty", "one"]
    assert spoken("Twelve,", "en") == spoken("12", "en") == ["twelve"]
    assert spoken("庆", "zh") == spoken("{qing4", "zh") == ["qing"]  # pinyin, toneless


# --------------------------------------------------------------------------- timed words


def timed(
    original: str,
    heard: Callable[[str], list[Word]] | list[Word],
    language: str = "en",
    lexicon: dict[str, str] | None = None,
    offset: float = 0.0,
) -> list[tuple[str, float | None, float | None]]:
    """The timed words of ``original`` synthesised as one chunk; ``heard`` the recognised
    words (or made from the text as chunked)."""
    mapped = prepare_text(original, SynthesisOptions(), language, Lexicon.parse(lexicon))
    words = WordMap(original, mapped, [mapped.text], language)
    recognised = heard(mapped.text) if callable(heard) else heard
    return times(words.timed(0, recognised, offset, 60.0))


def test_a_number_has_the_times_of_its_reading() -> None:
    # "I have twelve apples." heard word by word, half a second each
    assert timed("I have 12 apples.", heard_evenly) == [
        ("I", 0.0, 0.4),
        ("have", 0.5, 0.9),
        ("12", 1.0, 1.4),
        ("apples", 1.5, 1.9),
    ]


def test_a_number_read_as_several_words_spans_them() -> None:
    # "one hundred and twenty-five servers": four words heard for "125"
    assert timed("125 servers", heard_evenly) == [("125", 0.0, 1.9), ("servers", 2.0, 2.4)]


def test_digits_heard_are_read_as_the_text_was() -> None:
    heard = [Word("I", 0.0, 0.2), Word("have", 0.2, 0.5), Word("12", 0.5, 0.9)]
    assert timed("I have twelve", heard)[-1] == ("twelve", 0.5, 0.9)


def test_a_word_not_heard_has_no_times_and_nothing_is_made_up() -> None:
    heard = [Word("the", 0.0, 0.2), Word("cat", 0.3, 0.6), Word("sat", 0.9, 1.2)]
    assert timed("The black cat sat.", heard) == [
        ("The", 0.0, 0.2),
        ("black", None, None),  # missed: not spread between its neighbours
        ("cat", 0.3, 0.6),
        ("sat", 0.9, 1.2),
    ]


def test_an_extra_word_heard_is_left_out_and_a_misheard_one_keeps_its_place() -> None:
    heard = heard_evenly("the um cat sad")
    assert timed("The cat sat.", heard) == [("The", 0.0, 0.4), ("cat", 1.0, 1.4), ("sat", 1.5, 1.9)]


def test_a_pronunciation_is_timed_as_the_word_written() -> None:
    assert timed("Run nginx now", heard_evenly, lexicon={"nginx": "engine x"}) == [
        ("Run", 0.0, 0.4),
        ("nginx", 0.5, 1.4),  # "engine x": two words heard
        ("now", 1.5, 1.9),
    ]


def test_abbreviations_and_punctuation() -> None:
    assert timed("Dr. Smith, 3pm!", heard_evenly) == [
        ("Dr", 0.0, 0.4),  # read "Doctor"
        ("Smith", 0.5, 0.9),
        ("3pm", 1.0, 1.9),  # "three pm"
    ]


def test_chinese_words_are_characters() -> None:
    heard = [Word("我有", 0.0, 0.4), Word("三个", 0.4, 0.8), Word("平果", 0.8, 1.2)]
    assert timed("我有3个苹果。", heard, "zh") == [
        ("我", 0.0, 0.4),  # a character has the times of the piece it is heard in
        ("有", 0.0, 0.4),
        ("3", 0.4, 0.8),
        ("个", 0.4, 0.8),
        ("苹", 0.8, 1.2),  # 平 heard: a homophone, the same pinyin
        ("果", 0.8, 1.2),
    ]
    pinyin = [Word("去", 0.0, 0.3), Word("重庆", 0.3, 0.9)]
    assert timed("去重庆", pinyin, "zh", {"重庆": "{chong2 qing4}"}) == [
        ("去", 0.0, 0.3),
        ("重", 0.3, 0.9),  # one respelling of both characters: both have its times
        ("庆", 0.3, 0.9),
    ]


def test_times_move_to_the_chunk_and_stay_inside_its_audio() -> None:
    mapped = prepare_text("One two. Three four.", SynthesisOptions(), "en", None)
    words = WordMap("One two. Three four.", mapped, ["One two.", "Three four."], "en")
    late = [Word("three", 0.1, 0.5), Word("four", 0.6, 9.0), Word("extra", None, None)]
    assert times(words.timed(1, late, 2.0, 1.5)) == [("Three", 2.1, 2.5), ("four", 2.6, 3.5)]
    untimed = [Word("one", None, None), Word("two", 0.2, 0.4)]
    assert times(words.timed(0, untimed, 0.0, 1.0)) == [("One", None, None), ("two", 0.2, 0.4)]


# --------------------------------------------------------------------------- the engine


class WordRecognizer:
    """Hears each chunk as its text, one word every ``step`` seconds; counts its calls."""

    def __init__(self, chunk_text: Callable[[int], str], step: float = 0.2) -> None:
        self.chunk_text = chunk_text
        self.step = step
        self.calls: list[bool] = []  # whether word times were asked for, call by call

    def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int,
        language: str | None = None,
        words: bool = False,
    ) -> Transcript:
        text = self.chunk_text(len(self.calls))
        self.calls.append(words)
        return Transcript(text, tuple(heard_evenly(text, step=self.step)) if words else ())


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@pytest.fixture(scope="module")
def ref_wav(fixtures_dir: Path) -> Path:
    return fixtures_dir / "basic_ref_en.wav"


TEXT = "I have 12 apples near the quiet river bank. " * 6 + "Nothing else."


def test_the_engine_times_the_words_of_every_chunk(engine: Engine, ref_wav: Path) -> None:
    plain = engine.synthesize(TEXT, ref_wav, REF_TEXT, **FAST)
    assert len(plain.chunks) > 1 and all(s.words == () for s in plain.segments)
    hears = WordRecognizer(lambda i: plain.chunks[i % len(plain.chunks)])
    result = engine.synthesize(
        TEXT, ref_wav, REF_TEXT, word_timestamps=True, recognizer=hears, **FAST
    )
    np.testing.assert_array_equal(result.audio, plain.audio)  # the audio does not change
    assert hears.calls == [True] * len(plain.chunks)  # each chunk heard once, with times
    for segment in result.segments:
        assert [w.word for w in segment.words] == segment.text.replace("twelve", "12").replace(
            ".", ""
        ).split()
        first = segment.words[0]
        assert first.start is not None and segment.start - 0.2 <= first.start <= segment.start
    words = [w for s in result.segments for w in s.words]
    assert " ".join(w.word for w in words) == TEXT.replace(".", "").strip()
    assert all(w.start is not None and w.end is not None for w in words)


def test_the_quality_check_and_the_word_times_hear_the_audio_once(
    engine: Engine, ref_wav: Path
) -> None:
    heard = ["Nothing like it.", "I have twelve apples."]
    hears = WordRecognizer(lambda i: heard[i])
    result = engine.synthesize(
        "I have 12 apples.",
        ref_wav,
        REF_TEXT,
        word_timestamps=True,
        quality_check=True,
        recognizer=hears,
        **FAST,
    )
    assert hears.calls == [True, True]  # two tries, each heard once, with word times
    [segment] = result.segments
    assert [a.seed for a in segment.attempts] == [5, 6]
    assert times(segment.words) == [  # from the try kept (the second)
        ("I", 0.0, 0.1),
        ("have", 0.2, 0.3),
        ("12", 0.4, 0.5),
        ("apples", 0.6, 0.7),
    ]


def test_the_scheduler_streams_the_same_words(engine: Engine, ref_wav: Path) -> None:
    chunks = engine.synthesize(TEXT, ref_wav, REF_TEXT, **FAST).chunks
    options = SynthesisOptions(word_timestamps=True, **FAST)
    alone = engine.synthesize(
        TEXT, ref_wav, REF_TEXT, options=options, recognizer=WordRecognizer(chunks.__getitem__)
    )

    async def streamed() -> list[Any]:
        scheduler = Scheduler(engine)
        try:
            hears = WordRecognizer(chunks.__getitem__)
            return [
                c
                async for c in scheduler.stream_chunks(
                    TEXT, ref_wav, REF_TEXT, options=options, recognizer=hears
                )
            ]
        finally:
            scheduler.close()

    pieces = asyncio.run(streamed())
    assert [c.words for c in pieces] == [s.words for s in alone.segments]


def test_without_a_recogniser_word_times_are_a_clear_error(engine: Engine, ref_wav: Path) -> None:
    with pytest.raises(AsrUnavailable, match="word_timestamps"):
        engine.synthesize("Hello.", ref_wav, REF_TEXT, word_timestamps=True, **FAST)


# --------------------------------------------------------------------------- the real backend


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"))


def test_the_whisper_backend_times_words_on_a_tiny_random_model(
    engine: Engine, ref_wav: Path, tiny_whisper: Path
) -> None:
    recognizer = LazyRecognizer(str(tiny_whisper), "cpu")
    noise = np.random.default_rng(0).standard_normal(24_000 * 2).astype(np.float32) * 0.1
    heard = recognizer.transcribe(noise, 24_000, "en", words=True)
    assert heard.words and all(isinstance(w, Word) and w.word for w in heard.words)
    assert all(isinstance(w.start, float) for w in heard.words)  # garbage, but timed
    assert recognizer.transcribe(noise, 24_000, "en").words == ()  # only when asked for
    result = engine.synthesize(
        "Hello there.", ref_wav, REF_TEXT, word_timestamps=True, recognizer=recognizer, **FAST
    )
    [segment] = result.segments
    assert [w.word for w in segment.words] == ["Hello", "there"]
    for w in segment.words:  # garbage is misheard, yet paired or missed; never made up
        assert (w.start is None) == (w.end is None)
        assert w.start is None or 0 <= w.start <= (w.end or 0) <= result.duration
