"""From a text's language to the model that speaks it.

``language`` is an ISO 639-1 code (``"de"``, ``"en-US"`` counts as ``"en"``) or ``"auto"``.
``auto`` looks at the script first, which is cheap and certain for these cases:

- any kana → ``ja`` (Japanese mixes kana with Han characters);
- Han characters → ``zh``; mixed with Latin letters, the text goes to a model that speaks both
  Chinese and English (the default multilingual model);
- mostly Devanagari → ``hi``; mostly Cyrillic → ``ru``.

Anything else goes to `lingua <https://github.com/pemistahl/lingua-py>`_, restricted to the
languages the catalogue serves and built once per process (lazily); that is where Latin-script
languages are told apart (Vietnamese from French or English by its words and diacritics). When
it is unsure (fewer than three letters, or a confidence under ``min_confidence``) the text goes
to the default model.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from f5serve.errors import InvalidInput, UnsupportedLanguage
from f5serve.registry.catalog import Catalog

log = logging.getLogger(__name__)

AUTO = "auto"
MIN_CONFIDENCE = 0.6  # below this lingua's answer is treated as "unsure" (e.g. "Ok" → 0.5 fi)
MIN_LETTERS = 3  # fewer letters than this are never detected ("Hi", "OK")

_SCRIPTS = {
    "kana": re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"),
    "han": re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]"),
    "devanagari": re.compile(r"[\u0900-\u097f\ua8e0-\ua8ff]"),
    "cyrillic": re.compile(r"[\u0400-\u052f]"),
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"),
}
_TAG = re.compile(r"^([a-z]{2})(-[a-z0-9]{1,8})*$")  # ISO 639-1, optional BCP 47 subtags


def normalize_language(language: str) -> str:
    """``"EN-us"`` → ``"en"``; ``"auto"`` stays; anything else is :class:`InvalidInput`."""
    code = language.strip().lower().replace("_", "-")
    if code == AUTO:
        return AUTO
    match = _TAG.match(code)
    if match is None:
        raise InvalidInput(
            f"language must be an ISO 639-1 code such as 'en' or 'auto', got {language!r}"
        )
    return match.group(1)


def script_counts(text: str) -> dict[str, int]:
    """Letters of each script the fast path knows: kana, han, devanagari, cyrillic, latin."""
    return {script: len(pattern.findall(text)) for script, pattern in _SCRIPTS.items()}


@dataclass(frozen=True)
class Detection:
    """What ``auto`` made of a text."""

    language: str | None  # ISO 639-1 code; None = unsure (→ the default model)
    method: str  # "script", "lingua" or "none"
    mixed_zh_en: bool = False  # Han and Latin letters together


def detect_script(text: str) -> Detection | None:
    """The fast path: a language from the script alone, or None to ask lingua."""
    counts = script_counts(text)
    if counts["kana"]:
        return Detection("ja", "script")
    if counts["han"]:
        return Detection("zh", "script", mixed_zh_en=counts["latin"] > 0)
    letters = counts["devanagari"] + counts["cyrillic"] + counts["latin"]
    for script, code in (("devanagari", "hi"), ("cyrillic", "ru")):
        if counts[script] * 2 > letters:
            return Detection(code, "script")
    return None


class _Detectors:
    """lingua detectors, one per language set, built once per process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[tuple[frozenset[str], bool], Any] = {}

    def get(self, languages: frozenset[str], preload: bool = False) -> Any:
        """The detector for ``languages`` (a preloaded one serves lazy callers too)."""
        key = (languages, preload)
        with self._lock:
            if not preload and (languages, True) in self._built:
                return self._built[(languages, True)]
            if key not in self._built:
                self._built[key] = _build_detector(languages, preload)
            return self._built[key]


def lingua_codes(languages: Iterable[str]) -> frozenset[str]:
    """The subset of ``languages`` lingua can detect."""
    from lingua import IsoCode639_1

    known = set()
    for code in languages:
        try:
            IsoCode639_1.from_str(code)
        except ValueError:
            continue
        known.add(code)
    return frozenset(known)


def _build_detector(languages: frozenset[str], preload: bool) -> Any:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    if len(languages) < 2:
        return None  # lingua needs two; with one candidate there is nothing to decide
    builder = LanguageDetectorBuilder.from_iso_codes_639_1(
        *[IsoCode639_1.from_str(c) for c in sorted(languages)]
    )
    if preload:
        builder = builder.with_preloaded_language_models()
    log.info("built a language detector for %s", ", ".join(sorted(languages)))
    return builder.build()


DETECTORS = _Detectors()  # process-wide cache of immutable detectors


class LanguageRouter:
    """Chooses the model for a text; see the module docstring."""

    def __init__(self, catalog: Catalog, *, min_confidence: float = MIN_CONFIDENCE) -> None:
        self.catalog = catalog
        self.min_confidence = min_confidence
        self._languages = lingua_codes(catalog.languages())

    def warm_up(self) -> None:
        """Build the detector with every language model loaded (servers: do it at start-up)."""
        DETECTORS.get(self._languages, preload=True)

    def detect(self, text: str) -> Detection:
        """The language of ``text`` among those the catalogue serves.

        The text is looked at in Unicode form NFC, so letters typed as a base letter and
        combining marks (Vietnamese "ệ" as "e" + U+0323 + U+0302) count as the letters they are.
        """
        text = unicodedata.normalize("NFC", text)
        fast = detect_script(text)
        if fast is not None:
            return fast
        if script_counts(text)["latin"] < MIN_LETTERS:
            return Detection(None, "none")
        if len(self._languages) == 1:
            return Detection(next(iter(self._languages)), "none")
        detector = DETECTORS.get(self._languages)
        if detector is None:
            return Detection(None, "none")
        values = detector.compute_language_confidence_values(text)
        if not values or values[0].value < self.min_confidence:
            return Detection(None, "lingua")
        return Detection(values[0].language.iso_code_639_1.name.lower(), "lingua")

    def route(self, text: str, language: str = AUTO, model: str | None = None) -> str:
        """The name of the model that should speak ``text``.

        An explicit ``model`` wins (it must exist, and speak ``language`` if one is given);
        an explicit language picks the best model that speaks it; ``auto`` detects it.
        """
        code = normalize_language(language)
        if model is not None:
            spec = self.catalog.get(model)
            if code != AUTO and code not in spec.languages:
                raise UnsupportedLanguage(
                    f"model {model!r} does not speak {code!r} (it speaks: "
                    f"{', '.join(spec.languages)})",
                    details={"model": model, "language": code},
                )
            return spec.name
        if code != AUTO:
            return self._model_for(code)
        found = self.detect(text)
        log.debug("detected %s via %s", found.language, found.method)
        if found.mixed_zh_en:
            return self._model_for_all(("zh", "en")) or self._fallback("zh")
        return self._fallback(found.language)

    def _model_for(self, code: str) -> str:
        speakers = self.catalog.serving(code)
        if not speakers:
            served = self.catalog.languages()
            raise UnsupportedLanguage(
                f"no model speaks {code!r}; languages served: {', '.join(served)}",
                details={"language": code, "served": served},
            )
        return speakers[0].name

    def _model_for_all(self, codes: tuple[str, ...]) -> str | None:
        both = [m for m in self.catalog.serving(codes[0]) if set(codes) <= set(m.languages)]
        return both[0].name if both else None

    def _fallback(self, code: str | None) -> str:
        """The model for a detected language, or the default when unsure or unserved."""
        if code is not None and self.catalog.serving(code):
            return self.catalog.serving(code)[0].name
        return self.catalog.default_name
