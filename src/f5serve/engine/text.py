"""Text front end of upstream F5-TTS: vocabulary, pinyin tokens, reference text, chunking.

Every rule here reproduces the reference F5-TTS 1.1.x inference path exactly; the golden file
``text.json`` pins the outputs. Where the reference would crash, the behaviour is documented.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import rjieba
import torch
from pypinyin import Style, lazy_pinyin

from f5serve.errors import InvalidInput, InvalidText, ModelError, NotFound

UNKNOWN_ID = 0
"""Id used for tokens missing from the vocabulary (the reference maps them to 0, the space)."""

PAD_ID = -1
"""Padding value of a batch of token ids (the model shifts ids by one, so -1 becomes 0)."""

MAX_TOTAL_SECONDS = 22.0
"""Reference audio plus one generated chunk should fit in this many seconds."""

_QUOTES_AND_SEMICOLON = str.maketrans(
    {";": ",", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"}
)
_NO_SPACE_AFTER = frozenset(" :'\"")
_SENTENCE_SPLIT = re.compile(r"(?<=[;:,.!?])\s+|(?<=[；：，。！？])")


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Vocab:
    """Token vocabulary: one token per line, id = line index (id 0 is normally the space)."""

    tokens: tuple[str, ...]
    index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ModelError("vocabulary is empty: it must list at least one token")
        # A token listed twice keeps its last id, as in the reference's dict.
        mapping = {token: i for i, token in enumerate(self.tokens)}
        object.__setattr__(self, "index", MappingProxyType(mapping))

    @classmethod
    def from_file(cls, path: str | Path) -> Vocab:
        """Load ``vocab.txt``; only the line break is removed from each line (no stripping)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"vocabulary file not found: {path}", details={"path": str(path)}
            ) from None
        except OSError as exc:
            raise ModelError(f"cannot read vocabulary file {path}: {exc}") from exc
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelError(f"vocabulary file {path} is not valid UTF-8: {exc}") from exc
        if not content:
            raise ModelError(f"vocabulary file {path} is empty")
        return cls(_split_vocab_lines(content))

    def __len__(self) -> int:
        """Number of distinct tokens (the reference's ``vocab_size``)."""
        return len(self.index)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids; unknown tokens become :data:`UNKNOWN_ID`."""
        return [self.index.get(token, UNKNOWN_ID) for token in tokens]


def _split_vocab_lines(content: str) -> tuple[str, ...]:
    """Split like Python text-mode line iteration (universal newlines), dropping the breaks.

    A last line without a line break is kept whole (the reference would cut its last character).
    """
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return tuple(lines)


# --------------------------------------------------------------------------- text form


UNICODE_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


@dataclass(frozen=True)
class TextForm:
    """The form of the text a model was trained on, applied to what it reads before tokenising.

    The official models read text as written (the default: nothing changes). Community models
    trained on transcripts in one Unicode form and case need the same here: the Vietnamese
    models of ``hynt`` were trained on lower-case text, and a letter typed decomposed ("e" and
    two combining marks for "ệ") would not match the precomposed letters of such a vocabulary,
    so they read ``TextForm("NFC", lowercase=True)``.
    """

    unicode: str | None = None  # one of UNICODE_FORMS, or None: as given
    lowercase: bool = False

    def __post_init__(self) -> None:
        if self.unicode is not None and self.unicode not in UNICODE_FORMS:
            raise ModelError(
                f"text form unicode={self.unicode!r} is not one of {', '.join(UNICODE_FORMS)}"
            )

    def apply(self, text: str) -> str:
        """``text`` in this form."""
        if self.unicode is not None:
            text = unicodedata.normalize(self.unicode, text)  # type: ignore[arg-type]
        return text.lower() if self.lowercase else text


AS_WRITTEN = TextForm()
"""The form of the official models: the text as written."""


# --------------------------------------------------------------------------- pinyin tokens


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes."""
    return len(text.encode("utf-8"))


def _is_chinese(char: str) -> bool:
    """The reference's notion of a Chinese character (U+3100..U+9FFF)."""
    return "\u3100" <= char <= "\u9fff"


def _one_item_per_char(chars: str) -> list[str]:
    """pypinyin ``errors`` handler: keep each character without pinyin as its own item."""
    return list(chars)


def _tone3(text: str) -> list[str]:
    """Tone-3 pinyin with tone sandhi, exactly as the reference calls ``lazy_pinyin``."""
    return list(lazy_pinyin(text, style=Style.TONE3, tone_sandhi=True))


def _tone3_per_char(text: str) -> list[str]:
    """Like :func:`_tone3`, but a run of characters without pinyin is never merged."""
    handler: Any = _one_item_per_char  # pypinyin accepts a list; its stub says str
    return list(lazy_pinyin(text, style=Style.TONE3, tone_sandhi=True, errors=handler))


def _ascii_segment(tokens: list[str], seg: str) -> None:
    """Pure ASCII: characters kept; a multi-char segment gets a leading space if needed."""
    if tokens and len(seg) > 1 and tokens[-1] not in _NO_SPACE_AFTER:
        tokens.append(" ")
    tokens.extend(seg)


def _wide_segment(tokens: list[str], seg: str) -> None:
    """All characters 3 bytes (CJK): pinyin of the whole segment, a space before Chinese chars.

    ``lazy_pinyin`` merges a run of characters without pinyin (kana, dashes...) into one item;
    the reference then fails with an IndexError. Here that case falls back to one item per
    character (same pinyin and sandhi), which is the only place the output can differ.
    """
    items = _tone3(seg)
    if len(items) < len(seg):
        items = _tone3_per_char(seg)
    for i, char in enumerate(seg):
        if _is_chinese(char):
            tokens.append(" ")
        tokens.append(items[i])


def _mixed_segment(tokens: list[str], seg: str) -> None:
    """Mixed byte widths: character by character, Chinese characters to pinyin.

    (The reference also tests ``ord(c) < 256`` first; no such character is Chinese.)
    """
    for char in seg:
        if _is_chinese(char):
            tokens.append(" ")
            tokens.extend(_tone3(char))
        else:
            tokens.append(char)


EXPLICIT_PINYIN = re.compile(r"\{(?=[^}]*\d)([a-z]+[1-5]?(?:\s+[a-z]+[1-5]?)*)\}")
"""Syllables given in braces, ``{chong2 qing4}``: tokens as they are, each after a space
(as a Chinese character's pinyin is); the tone digits say it is pinyin."""


def to_pinyin_tokens(text: str) -> list[str]:
    """The reference "pinyin" tokenisation of one text (rjieba segments + pypinyin), with
    :data:`EXPLICIT_PINYIN` syllables taken as given (text without braces is unaffected)."""
    tokens: list[str] = []
    for i, part in enumerate(EXPLICIT_PINYIN.split(text)):
        if i % 2:
            tokens.extend(token for syllable in part.split() for token in (" ", syllable))
        else:
            _reference_tokens(tokens, part)
    return tokens


def _reference_tokens(tokens: list[str], text: str) -> None:
    """Append the reference tokenisation of ``text`` to ``tokens``."""
    for seg in rjieba.cut(text.translate(_QUOTES_AND_SEMICOLON)):
        n_bytes = utf8_len(seg)
        if n_bytes == len(seg):
            _ascii_segment(tokens, seg)
        elif n_bytes == 3 * len(seg):
            _wide_segment(tokens, seg)
        else:
            _mixed_segment(tokens, seg)


def text_to_ids(text: str, vocab: Vocab) -> list[int]:
    """Token ids of ``text``: pinyin tokens looked up in ``vocab``."""
    return vocab.encode(to_pinyin_tokens(text))


def pad_batch(batch: Sequence[Sequence[int]]) -> torch.Tensor:
    """Stack id lists into a ``[B, max_len]`` int64 tensor padded with :data:`PAD_ID`."""
    width = max((len(ids) for ids in batch), default=0)
    out = torch.full((len(batch), width), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(batch):
        if ids:
            out[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
    return out


# --------------------------------------------------------------------------- reference text


def normalize_ref_text(ref_text: str) -> str:
    """Make the reference text end with ". " or "。" (the reference's preprocessing step).

    No whitespace is stripped, exactly as in the reference: "Hi" → "Hi. ", "Hi." → "Hi. ",
    "Hi " → "Hi . ". Empty or whitespace-only text raises :class:`InvalidText` (the reference
    would transcribe the audio; this engine has no ASR). This is the text the chunk budget
    (:func:`max_chunk_bytes`) is computed from.
    """
    if not ref_text.strip():
        raise InvalidText(
            "reference text is empty: give the transcript of the reference audio",
            details={"field": "ref_text"},
        )
    if ref_text.endswith(". ") or ref_text.endswith("。"):
        return ref_text
    return ref_text + (" " if ref_text.endswith(".") else ". ")


def prepare_ref_text(ref_text: str) -> str:
    """Reference text as the model sees it, before the generated text is appended.

    Applies :func:`normalize_ref_text`, then the reference batch step: one more space when the
    last character is a single UTF-8 byte ("Hi" → "Hi.  ", "你好。" unchanged). Its byte length
    is the one the duration estimate divides by.
    """
    text = normalize_ref_text(ref_text)
    if utf8_len(text[-1]) == 1:
        text += " "
    return text


# --------------------------------------------------------------------------- generated text


def validate_gen_text(text: str) -> str:
    """Reject text with no letter or digit (empty, spaces, punctuation); return it unchanged."""
    if not any(unicodedata.category(char)[0] in "LN" for char in text):
        what = "empty" if not text.strip() else "only punctuation, symbols or spaces"
        raise InvalidText(
            f"text to synthesise is {what}: it needs at least one letter or digit",
            details={"field": "text"},
        )
    return text


def _with_trailing_space(sentence: str) -> str:
    """The reference appends a space after a sentence ending in a single-byte character."""
    if sentence and utf8_len(sentence[-1]) == 1:
        return sentence + " "
    return sentence


def chunk_text(text: str, max_chars: int, first_max_chars: int | None = None) -> list[str]:
    """Split after sentence punctuation and pack sentences into chunks of ~``max_chars`` bytes.

    A sentence is added while the current chunk's bytes plus the sentence's bytes stay within
    ``max_chars`` (``first_max_chars``, when given, for the first chunk; the appended space is
    not counted); a single sentence longer than the budget becomes its own chunk. Chunks are
    stripped; empty chunks are dropped.
    """
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_SPLIT.split(text):
        budget = max_chars if chunks or first_max_chars is None else first_max_chars
        if utf8_len(current) + utf8_len(sentence) <= budget:
            current += _with_trailing_space(sentence)
            continue
        if current:
            chunks.append(current.strip())
        current = _with_trailing_space(sentence)
    if current:
        chunks.append(current.strip())
    return chunks


def max_chunk_bytes(ref_text: str, ref_seconds: float, speed: float = 1.0) -> int:
    """Chunk budget in bytes: ``int(bytes(ref_text) / ref_seconds · (22 − ref_seconds) · speed)``.

    ``ref_text`` is the normalised reference text (:func:`normalize_ref_text`, without the extra
    space of :func:`prepare_ref_text`) and ``ref_seconds`` the length of the cleaned reference
    audio. A reference of 22 s or more gives a budget ≤ 0, where every sentence becomes its own
    chunk, as in the reference; the result is clamped at 0, which chunks identically.
    """
    return speech_bytes(ref_text, ref_seconds, MAX_TOTAL_SECONDS - ref_seconds, speed)


def speech_bytes(ref_text: str, ref_seconds: float, seconds: float, speed: float = 1.0) -> int:
    """Bytes of text spoken in about ``seconds`` at the reference's rate (``ref_text`` in
    ``ref_seconds``) times ``speed``: ``int(bytes(ref_text) / ref_seconds · seconds · speed)``,
    at least 0."""
    if not math.isfinite(ref_seconds) or ref_seconds <= 0:
        raise InvalidInput(
            f"reference audio duration must be positive, got {ref_seconds}",
            details={"field": "ref_seconds"},
        )
    if not math.isfinite(speed) or speed <= 0:
        raise InvalidInput(f"speed must be positive, got {speed}", details={"field": "speed"})
    budget = utf8_len(ref_text) / ref_seconds * seconds * speed
    return max(0, int(budget))
