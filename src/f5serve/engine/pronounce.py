"""Pronunciation dictionaries: words or patterns the model says wrong, respelt.

An entry maps a word (matched whole, case-sensitive) or a ``/regular expression/`` to what to
say instead: another spelling ("nginx" → "engine x"), or for Chinese explicit tone-3 pinyin in
braces ("重庆" → "{chong2 qing4}", read by :func:`f5serve.engine.text.to_pinyin_tokens` as
those syllables). Dictionaries are applied before normalisation, in order (server-wide, the
voice's, the request's), each entry in turn.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from f5serve.engine.textmap import MappedText
from f5serve.errors import ConfigError, InvalidInput

MAX_ENTRIES = 1000
MAX_KEY_CHARS = 200
MAX_VALUE_CHARS = 500


@dataclass(frozen=True)
class Lexicon:
    """An ordered pronunciation dictionary, checked and compiled."""

    entries: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, mapping: Any, where: str = "pronunciations") -> Lexicon:
        """Check a ``{word or /pattern/: replacement}`` mapping (:class:`InvalidInput` names
        ``where`` and the bad entry)."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise InvalidInput(f"{where} must be an object of word: replacement")
        if len(mapping) > MAX_ENTRIES:
            raise InvalidInput(f"{where} has {len(mapping)} entries (at most {MAX_ENTRIES})")
        for key, value in mapping.items():
            _check_entry(key, value, where)
        return cls(tuple(mapping.items()))

    @classmethod
    def from_file(cls, path: str | Path) -> Lexicon:
        """A dictionary from a JSON file holding one object (:class:`ConfigError` if it
        cannot be read or is not one)."""
        try:
            mapping = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read pronunciations file {path}: {exc}") from None
        try:
            return cls.parse(mapping, f"pronunciations file {path}")
        except InvalidInput as exc:
            raise ConfigError(exc.message) from None

    def __bool__(self) -> bool:
        return bool(self.entries)

    def then(self, other: Lexicon) -> Lexicon:
        """This dictionary followed by ``other`` (an entry of ``other`` with the same key
        replaces this one's)."""
        merged = dict(self.entries)
        merged.update(other.entries)
        return Lexicon(tuple(merged.items()))

    def apply(self, text: str) -> str:
        """``text`` with every entry applied, in order."""
        return self.apply_mapped(MappedText.of(text)).text

    def apply_mapped(self, text: MappedText) -> MappedText:
        """:meth:`apply` keeping the map to the original text (a respelling comes from the
        word or match it replaced)."""
        for key, value in self.entries:
            pattern, replacement = _compiled(key, value)
            text = text.sub(pattern, functools.partial(_expand, replacement))
        return text


def _expand(template: str, match: re.Match[str]) -> str:
    return match.expand(template)


def _check_entry(key: Any, value: Any, where: str) -> None:
    if not isinstance(key, str) or not isinstance(value, str):
        raise InvalidInput(f"{where}: every word and replacement must be a string")
    if not key.strip() or len(key) > MAX_KEY_CHARS or len(value) > MAX_VALUE_CHARS:
        raise InvalidInput(
            f"{where}: {key[:40]!r} must be 1 to {MAX_KEY_CHARS} characters and its "
            f"replacement at most {MAX_VALUE_CHARS}"
        )
    try:
        pattern, replacement = _compiled(key, value)
        pattern.sub(replacement, "")  # a bad group reference fails here
    except (re.error, IndexError) as exc:
        raise InvalidInput(f"{where}: {key!r} → {value!r} is not a valid pattern: {exc}") from None


def _compiled(key: str, value: str) -> tuple[re.Pattern[str], str]:
    """``/pattern/`` as a regular expression (``\\1`` in the replacement refers to its
    groups); a word as itself, matched whole (Chinese or Japanese: anywhere), its replacement
    taken literally."""
    if len(key) > 2 and key.startswith("/") and key.endswith("/"):
        return re.compile(key[1:-1]), value
    before = r"(?<!\w)" if _spaced(key[0]) else ""
    after = r"(?!\w)" if _spaced(key[-1]) else ""
    return re.compile(before + re.escape(key) + after), value.replace("\\", "\\\\")


def _spaced(char: str) -> bool:
    """Whether words end at a space next to ``char`` (a letter or digit of an alphabetic
    script); Chinese and Japanese words are matched anywhere."""
    return char.isalnum() and char < "\u3000"
