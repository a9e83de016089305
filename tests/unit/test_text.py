"""Text front end against the reference golden outputs (golden/text.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from f5serve.engine import text as text_mod
from f5serve.engine.text import (
    TextForm,
    Vocab,
    chunk_text,
    max_chunk_bytes,
    normalize_ref_text,
    pad_batch,
    prepare_ref_text,
    speech_bytes,
    text_to_ids,
    to_pinyin_tokens,
    utf8_len,
    validate_gen_text,
)
from f5serve.errors import InvalidInput, InvalidText, ModelError, NotFound

GOLDEN_DIR = Path(__file__).parents[1] / "fixtures" / "golden"
GOLDEN: dict[str, Any] = json.loads((GOLDEN_DIR / "text.json").read_text(encoding="utf-8"))
TEXT_CASES = list(zip(GOLDEN["texts"], GOLDEN["pinyin_tokens"], strict=True))
CHUNK_CASES = [
    (name, int(max_chars), chunks)
    for name in ("chunk_text_story", "chunk_text_zh")
    for max_chars, chunks in GOLDEN[name]["chunks_by_max_chars"].items()
]


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab.from_file(GOLDEN_DIR / "vocab.txt")


# --------------------------------------------------------------------------- vocabulary


def test_vocab_official(vocab: Vocab) -> None:
    assert len(vocab) == 2545
    assert vocab.tokens[0] == " "
    assert vocab.encode([" ", "!", "ni3"]) == [0, 1, vocab.index["ni3"]]
    assert vocab.index["ni3"] > 2


def test_vocab_unknown_token_is_zero(vocab: Vocab) -> None:
    assert vocab.encode(["not-a-token", "ni3", "\u2603"]) == [0, vocab.index["ni3"], 0]


def test_vocab_keeps_whitespace_tokens(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(b" \n  \na\r\nb\nlast")
    vocab = Vocab.from_file(path)
    assert vocab.tokens == (" ", "  ", "a", "b", "last")
    assert vocab.encode(["  ", "last", "c"]) == [1, 4, 0]


def test_vocab_duplicate_token_keeps_last_id() -> None:
    vocab = Vocab((" ", "a", "a"))
    assert vocab.encode(["a"]) == [2]
    assert len(vocab) == 2


def test_vocab_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "vocab.txt"
    with pytest.raises(NotFound) as info:
        Vocab.from_file(path)
    assert str(path) in info.value.message


@pytest.mark.parametrize(("content", "needle"), [(b"", "empty"), (b"\xff\xfe\n", "UTF-8")])
def test_vocab_bad_file(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=needle):
        Vocab.from_file(path)


# --------------------------------------------------------------------------- pinyin tokens


@pytest.mark.parametrize(("text", "expected"), TEXT_CASES, ids=[f"text{i}" for i in range(6)])
def test_pinyin_tokens_golden(text: str, expected: list[str]) -> None:
    assert to_pinyin_tokens(text) == expected


def test_padded_ids_golden(vocab: Vocab) -> None:
    ids = pad_batch([text_to_ids(text, vocab) for text in GOLDEN["texts"]])
    assert ids.dtype == torch.long
    assert ids.tolist() == GOLDEN["token_ids_padded_minus1"]


def test_pad_batch_shapes() -> None:
    out = pad_batch([[3, 4, 5], [], [7]])
    assert out.tolist() == [[3, 4, 5], [-1, -1, -1], [7, -1, -1]]
    assert pad_batch([]).shape == (0, 0)


def test_pinyin_empty_text() -> None:
    assert to_pinyin_tokens("") == []


def test_pinyin_run_without_pinyin_in_one_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    # lazy_pinyin merges "こんにちは" into one item; the reference would raise IndexError.
    monkeypatch.setattr(text_mod.rjieba, "cut", lambda text: [text])
    tokens = to_pinyin_tokens("こんにちは世界")
    assert tokens == ["こ", "ん", "に", "ち", "は", " ", "shi4", " ", "jie4"]


def test_pinyin_mixed_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A segment mixing byte widths goes character by character.
    monkeypatch.setattr(text_mod.rjieba, "cut", lambda text: [text])
    assert to_pinyin_tokens("é你ㄅ—") == ["é", " ", "ni3", " ", "ㄅ", "—"]


def test_utf8_len() -> None:
    assert utf8_len("aé你𠮶") == 1 + 2 + 3 + 4


# --------------------------------------------------------------------------- reference text


@pytest.mark.parametrize(
    ("ref", "normalized", "prepared"),
    [
        ("Hello", "Hello. ", "Hello.  "),
        ("Hello.", "Hello. ", "Hello.  "),
        ("Hello. ", "Hello. ", "Hello.  "),
        ("Hello ", "Hello . ", "Hello .  "),
        ("Some call me nature, ", "Some call me nature, . ", "Some call me nature, .  "),
        ("你好。", "你好。", "你好。"),
        ("你好", "你好. ", "你好.  "),
        ("你好！", "你好！. ", "你好！.  "),
    ],
)
def test_ref_text_rules(ref: str, normalized: str, prepared: str) -> None:
    assert normalize_ref_text(ref) == normalized
    assert prepare_ref_text(ref) == prepared


@pytest.mark.parametrize("ref", ["", "   ", "\n\t"])
def test_ref_text_empty(ref: str) -> None:
    with pytest.raises(InvalidText, match="reference text is empty"):
        prepare_ref_text(ref)


# --------------------------------------------------------------------------- generated text


@pytest.mark.parametrize("text", ["", "   \n", "?!...", "。，！", "— … ¿¡ $%"])
def test_gen_text_invalid(text: str) -> None:
    with pytest.raises(InvalidText):
        validate_gen_text(text)


@pytest.mark.parametrize("text", [" Hello ", "42", "你好", "こんにちは", "?!a"])
def test_gen_text_valid_is_unchanged(text: str) -> None:
    assert validate_gen_text(text) == text


@pytest.mark.parametrize(("name", "max_chars", "expected"), CHUNK_CASES)
def test_chunk_text_golden(name: str, max_chars: int, expected: list[str]) -> None:
    assert chunk_text(GOLDEN[name]["text"], max_chars) == expected


def test_chunk_text_first_budget_applies_to_the_first_chunk_only() -> None:
    text = "One two, three four. Five six seven! Eight nine ten eleven."
    assert chunk_text(text, 100) == [text]
    assert chunk_text(text, 100, 20) == [
        "One two, three four.",
        "Five six seven! Eight nine ten eleven.",
    ]
    assert chunk_text(text, 100, 8) == [
        "One two,",
        "three four. Five six seven! Eight nine ten eleven.",
    ]
    assert chunk_text(text, 100, 0) == chunk_text(text, 100, 3)  # a clause longer stays whole
    assert chunk_text(text, 30, None) == chunk_text(text, 30)


def test_speech_bytes_is_the_reference_rate_times_seconds() -> None:
    ref = "Some call me nature, others call me mother nature. "
    assert speech_bytes(ref, 5.0, 2.0) == int(51 / 5.0 * 2.0)
    assert speech_bytes(ref, 5.0, 2.0, speed=1.5) == int(51 / 5.0 * 2.0 * 1.5)
    assert speech_bytes(ref, 5.0, 17.0) == max_chunk_bytes(ref, 5.0)


def test_chunk_text_zero_budget_one_sentence_each() -> None:
    assert chunk_text("One. Two, three!", 0) == ["One.", "Two,", "three!"]
    assert chunk_text("", 100) == []


# --------------------------------------------------------------------------- chunk budget


def test_max_chunk_bytes_formula() -> None:
    ref = "Some call me nature, others call me mother nature. "  # 51 bytes
    assert max_chunk_bytes(ref, 5.0) == int(51 / 5.0 * 17.0)
    assert max_chunk_bytes(ref, 5.0, speed=0.8) == int(51 / 5.0 * 17.0 * 0.8)
    assert max_chunk_bytes("你好。", 2.0) == int(9 / 2.0 * 20.0)


def test_max_chunk_bytes_long_reference_clamped() -> None:
    assert max_chunk_bytes("Hello. ", 22.0) == 0
    assert max_chunk_bytes("Hello. ", 30.0) == 0


@pytest.mark.parametrize(("seconds", "speed"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 0.0), (2.0, -1.0)])
def test_max_chunk_bytes_invalid(seconds: float, speed: float) -> None:
    with pytest.raises(InvalidInput):
        max_chunk_bytes("Hello. ", seconds, speed)


# --------------------------------------------------------------------------- text form


@pytest.mark.parametrize(
    ("form", "text", "expected"),
    [
        (TextForm(), "Xin Chào", "Xin Chào"),
        (TextForm("NFC"), "Vie\u0323\u0302t", "Việt"),  # e + dot below + circumflex → ệ
        (TextForm("NFD"), "ệ", "e\u0323\u0302"),
        (TextForm(lowercase=True), "ĐÀ NẴNG", "đà nẵng"),
        (TextForm("NFC", lowercase=True), "VIE\u0323\u0302T", "việt"),
    ],
)
def test_text_form_puts_text_in_the_form_a_model_was_trained_on(
    form: TextForm, text: str, expected: str
) -> None:
    assert form.apply(text) == expected


def test_text_form_refuses_an_unknown_unicode_form() -> None:
    with pytest.raises(ModelError, match="text form unicode='nfc' is not one of NFC, NFD"):
        TextForm("nfc")


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # jieba cuts ASCII runs from other letters ("tr" | "ư" | "ờ" | "ng"), and the reference
        # puts a space before a multi-letter ASCII run: the Vietnamese models were trained on
        # exactly these tokens (their data went through upstream's convert_char_to_pinyin).
        # Checked against jieba 0.42.1, whose cuts rjieba reproduces for this text.
        ("trường học", ["t", "r", "ư", "ờ", " ", "n", "g", " ", "h", "ọ", "c"]),
        ("người ơi, đẹp quá.", [*"người ơi, đẹp", " ", *"qu", "á", "."]),
    ],
)
def test_vietnamese_letters_are_tokens_as_the_reference_cuts_them(
    text: str, tokens: list[str]
) -> None:
    assert to_pinyin_tokens(text) == tokens
