"""Word timestamps: the words of each chunk as the caller wrote them, with when speech
recognition heard them in the chunk's audio.

The words the recogniser heard (``Transcript.words``) are aligned to the words of the chunk's
text (the text the model spoke: pronunciations applied, numbers written out) by edit distance
over both read the same way (written out, case folded, letters and digits only). Each chunk
word then takes the times of the recognised word it is paired with, exact or misheard (a
misheard word is still where it was heard); a word paired with nothing (missed) has none. The
chunk's words are traced back through the :class:`~f5serve.engine.textmap.MappedText` of the
pronunciations and normalisation to the words of the original text: "12" read "twelve" has the
times of "twelve", a number read as several words spans from the first heard to the last.

A word is a run of characters between spaces, without the punctuation around it; in Chinese
and Japanese, where words are not spaced, each character (kana, Han, CJK punctuation and
full-width forms) is one word, and takes the times of the recognised piece it is heard in.
Chinese characters compare by their toneless pinyin (a homophone heard, or a respelling in
explicit pinyin such as ``{chong2 qing4}``, pairs with the character).
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from pypinyin import lazy_pinyin

from f5serve.engine.asr import Word, fold
from f5serve.engine.normalize import normalize_text
from f5serve.engine.textmap import MappedText

_SINGLE = "\u3000-\u9fff\uff00-\uffef"  # CJK punctuation, kana, Han, full-width: one word each
_TOKEN = re.compile(rf"[{_SINGLE}]|[^\s{_SINGLE}]+")
_TONED = re.compile(r"^([a-z]+)[1-5]$")  # a pinyin syllable with its tone


def word_spans(text: str) -> list[tuple[int, int]]:
    """Where the words of ``text`` are: ``(start, end)``, in order (a token without a letter
    or digit is no word)."""
    spans = []
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        while start < end and unicodedata.category(text[start])[0] == "P":
            start += 1
        while end > start and unicodedata.category(text[end - 1])[0] == "P":
            end -= 1
        if any(unicodedata.category(c)[0] in "LN" for c in text[start:end]):
            spans.append((start, end))
    return spans


def spoken(word: str, language: str | None) -> list[str]:
    """How the alignment compares ``word``: the runs of letters and digits of what it is read
    as, folded (``"21"``: ``["twenty", "one"]``; ``"你好"``: ``["你", "好"]``), so that
    "twenty-one" and "twenty one" compare the same."""
    reading = normalize_text(word, language)
    return [
        key
        for s, e in word_spans(reading)
        for alnum, run in itertools.groupby(reading[s:e], key=_alnum)
        if alnum and (key := _sound(fold("".join(run))))
    ]


def _sound(key: str) -> str:
    """A Chinese character as its toneless pinyin, and explicit pinyin (``chong2``) without
    its tone, so that a respelling in pinyin, or a homophone heard, still compares equal."""
    if len(key) == 1 and "\u3100" <= key <= "\u9fff":
        return str(lazy_pinyin(key)[0])
    return _TONED.sub(r"\1", key)


def _alnum(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMN"


def align(expected: Sequence[str], heard: Sequence[str]) -> list[int | None]:
    """For each of ``expected``, the index in ``heard`` it is paired with by the least edits
    (substitutions, insertions, deletions, each costing one), or None where it was missed."""
    n, m = len(expected), len(heard)
    # cost[i][j]: edits between expected[:i] and heard[:j] (an empty side: the other's length)
    cost = [[i + j if not (i and j) else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j - 1] + (expected[i - 1] != heard[j - 1]),
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
            )
    pairs: list[int | None] = [None] * n
    i, j = n, m
    while i and j:
        if cost[i][j] == cost[i - 1][j - 1] + (expected[i - 1] != heard[j - 1]):
            i, j = i - 1, j - 1
            pairs[i] = j
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs


@dataclass
class WordMap:
    """The words of one request's chunks, traced to the ``original`` text: ``text`` is that
    text as chunked (pronunciations and normalisation applied), ``chunks`` its chunks."""

    original: str
    text: MappedText
    chunks: Sequence[str]
    language: str | None = None
    _words: list[tuple[int, int]] = field(init=False, repr=False)  # of the original
    _starts: list[int] = field(init=False, repr=False)
    _ends: list[int] = field(init=False, repr=False)
    _places: list[list[int | None]] = field(init=False, repr=False)  # chunk char → text index

    def __post_init__(self) -> None:
        self._words = word_spans(self.original)
        self._starts = [s for s, _ in self._words]
        self._ends = [e for _, e in self._words]
        # chunking only changes whitespace: the other characters follow one another in order
        solid = iter([i for i, c in enumerate(self.text.text) if not c.isspace()])
        self._places = [[None if c.isspace() else next(solid) for c in ch] for ch in self.chunks]

    def timed(
        self, index: int, heard: Sequence[Word], offset: float, length: float
    ) -> tuple[Word, ...]:
        """The original words of chunk ``index`` with the times of the ``heard`` words they
        align with (seconds from the start of the chunk's audio, at most ``length``), moved by
        ``offset`` (where the chunk's audio starts in the output); untimed where missed."""
        chunk, places = self.chunks[index], self._places[index]
        units: list[tuple[str, tuple[int, int]]] = []
        for start, end in word_spans(chunk):
            inside = [p for p in places[start:end] if p is not None]
            source = self.text.origin(inside[0], inside[-1] + 1)
            units.extend((key, source) for key in spoken(chunk[start:end], self.language))
        said = [(key, w) for w in heard for key in spoken(w.word, self.language)]
        pairs = align([key for key, _ in units], [key for key, _ in said])
        times: dict[int, list[tuple[float, float]]] = {}
        for (_, (start, end)), pair in zip(units, pairs, strict=True):
            timing = None if pair is None else _clamped(said[pair][1], length)
            for w in self._overlapping(start, max(end, start + 1)):
                times.setdefault(w, [])
                if timing is not None:
                    times[w].append(timing)
        return tuple(
            _word(self.original[slice(*self._words[w])], times[w], offset) for w in sorted(times)
        )

    def _overlapping(self, start: int, end: int) -> range:
        """Indexes of the original words that overlap ``original[start:end]``."""
        return range(bisect.bisect_right(self._ends, start), bisect.bisect_left(self._starts, end))


def _clamped(word: Word, length: float) -> tuple[float, float] | None:
    """The times of a heard word within the chunk's audio; None if it has none."""
    if word.start is None or word.end is None:
        return None
    return min(max(word.start, 0.0), length), min(max(word.end, 0.0), length)


def _word(text: str, times: list[tuple[float, float]], offset: float) -> Word:
    if not times:
        return Word(text, None, None)
    start, end = min(s for s, _ in times), max(e for _, e in times)
    return Word(text, round(offset + start, 3), round(offset + end, 3))
