"""Pronunciation dictionaries and explicit pinyin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from f5serve.engine.pronounce import MAX_ENTRIES, Lexicon
from f5serve.engine.text import to_pinyin_tokens
from f5serve.errors import ConfigError, InvalidInput


def test_words_match_whole_and_patterns_use_groups() -> None:
    lexicon = Lexicon.parse({"nginx": "engine x", r"/(\d+)x/": r"\1 times", "C:\\": "drive C"})
    said = lexicon.apply("nginx is 3x faster than nginxy")
    assert said == "engine x is 3 times faster than nginxy"
    assert lexicon.apply("open C:\\ now") == "open drive C now"


def test_chinese_words_match_inside_a_sentence_and_may_become_pinyin() -> None:
    lexicon = Lexicon.parse({"重庆": "{chong2 qing4}"})
    text = lexicon.apply("我去重庆了")
    assert text == "我去{chong2 qing4}了"
    tokens = to_pinyin_tokens(text)
    assert tokens == [" ", "wo3", " ", "qu4", " ", "chong2", " ", "qing4", " ", "le"]


def test_braces_without_tone_digits_are_ordinary_text() -> None:
    assert to_pinyin_tokens("{ok}") == ["{", " ", "o", "k", "}"]  # as the reference reads it


def test_later_dictionaries_win_and_entries_apply_in_order() -> None:
    server = Lexicon.parse({"SQL": "sequel", "GIF": "gif"})
    request = Lexicon.parse({"GIF": "jif"})
    assert server.then(request).apply("SQL GIF") == "sequel jif"
    assert Lexicon.parse({"a": "b", "b": "c"}).apply("a") == "c"


@pytest.mark.parametrize(
    "mapping",
    [
        ["not", "an object"],
        {"word": 3},
        {"": "empty"},
        {"/(/": "bad pattern"},
        {"/a/": r"\2"},
        {f"w{i}": "x" for i in range(MAX_ENTRIES + 1)},
    ],
)
def test_bad_dictionaries_are_refused(mapping: object) -> None:
    with pytest.raises(InvalidInput):
        Lexicon.parse(mapping)


def test_a_dictionary_file(tmp_path: Path) -> None:
    good = tmp_path / "words.json"
    good.write_text(json.dumps({"nginx": "engine x"}))
    assert Lexicon.from_file(good).entries == (("nginx", "engine x"),)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(ConfigError, match="pronunciations file"):
            Lexicon.from_file(path)
