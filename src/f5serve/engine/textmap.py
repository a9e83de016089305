"""Text rewritten with a map back to the text it was rewritten from.

Pronunciations and normalisation replace pieces of the text ("12" → "twelve", "nginx" →
"engine x"). :class:`MappedText` does those replacements and remembers, for each character of
the result, the span of the original text it came from, so that a word of the rewritten text
(spoken, and timed by speech recognition) can be traced to the words the caller wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MappedText:
    """``text`` and, for each of its characters, the ``(start, end)`` span of the original
    text it came from (a character kept as it was: its own position; a character of a
    replacement: the whole span that was replaced)."""

    text: str
    origins: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, text: str) -> MappedText:
        """``text`` as its own original."""
        return cls(text, tuple((i, i + 1) for i in range(len(text))))

    def sub(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> MappedText:
        """Like ``pattern.sub(replace, text)``, keeping the map: each replacement comes from
        the original span of what it replaced. What a replacement starts or ends with
        unchanged stays as it was ("3 apples" → "three apples": only "three" comes from
        "3")."""
        parts: list[str] = []
        origins: list[tuple[int, int]] = []
        kept = 0  # end of the text copied so far
        for m in pattern.finditer(self.text):
            new = replace(m)
            if new == m[0]:
                continue
            head, tail = _common_ends(m[0], new)
            start, end = m.start() + head, m.end() - tail
            parts.append(self.text[kept:start])
            origins.extend(self.origins[kept:start])
            parts.append(new[head : len(new) - tail])
            origins.extend([self.origin(start, end)] * (len(new) - head - tail))
            kept = end
        if not parts:
            return self
        parts.append(self.text[kept:])
        origins.extend(self.origins[kept:])
        return MappedText("".join(parts), tuple(origins))

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` came from (an empty span:
        the position in the original where it lies)."""
        covered = self.origins[start:end]
        if covered:
            return min(s for s, _ in covered), max(e for _, e in covered)
        if start < len(self.origins):
            at = self.origins[start][0]
        else:
            at = self.origins[-1][1] if self.origins else 0
        return at, at


def _common_ends(old: str, new: str) -> tuple[int, int]:
    """How many characters ``old`` and ``new`` share at their start, then at their end (not
    counting those again)."""
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return head, tail
