"""Speech recognition: the :class:`Recognizer` interface, the character error rate, and the
policy of the quality check (transcribe each synthesised chunk, try the next seed while it reads
badly).

The one backend, :class:`~f5serve.engine.whisper.WhisperRecognizer` (the ``transformers``
Whisper pipeline, as upstream F5-TTS), needs the optional extra ``f5serve[asr]``;
:class:`LazyRecognizer` imports and loads it on first use, so nothing here needs the extra.
"""

from __future__ import annotations

import importlib
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from f5serve.engine.normalize import normalize_text
from f5serve.engine.options import SynthesisOptions
from f5serve.errors import AsrUnavailable, ModelUnavailable

DEFAULT_MODEL = "openai/whisper-large-v3-turbo"  # what upstream F5-TTS transcribes with
INSTALL_HINT = "pip install 'f5serve[asr]'"
RETRY_SECONDS = 300.0  # a model that could not be loaded is not tried again sooner


@dataclass(frozen=True)
class Transcript:
    """What a recogniser heard."""

    text: str


class Recognizer(Protocol):
    """Speech to text: anything with this method (a fake one in tests)."""

    def transcribe(
        self, audio: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        """The words of mono float ``audio`` at ``sample_rate``; ``language`` (ISO 639-1) is
        a hint (None: detect it)."""
        ...


def installed() -> bool:
    """Whether the backend's package (``transformers``, the extra ``f5serve[asr]``) imports."""
    try:
        importlib.import_module("transformers")
    except ImportError:
        return False
    return True


class LazyRecognizer:
    """The Whisper recogniser of ``model`` (a Hugging Face repository or a local folder),
    loaded on first use on ``device`` (default: the best available), then shared by threads
    one call at a time."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None) -> None:
        self.model = model
        self.device = device
        self._loaded: Recognizer | None = None
        self._failure: tuple[float, ModelUnavailable] | None = None  # when, and why
        self._lock = threading.Lock()

    def load(self) -> Recognizer:
        """The loaded recogniser (:class:`AsrUnavailable` without the extra). A model that
        cannot be loaded is :class:`~f5serve.errors.ModelUnavailable`, raised again without
        trying for :data:`RETRY_SECONDS` (an offline hub retries for tens of seconds)."""
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            if not installed():
                raise AsrUnavailable(f"speech recognition is not installed: {INSTALL_HINT}")
            if self._failure is not None and time.monotonic() - self._failure[0] < RETRY_SECONDS:
                raise self._failure[1]
            try:
                self._loaded = self._open()
            except ModelUnavailable as exc:
                self._failure = (time.monotonic(), exc)
                raise
            return self._loaded

    def _open(self) -> Recognizer:
        path = Path(self.model)
        if (path.is_absolute() or self.model.startswith(".")) and not path.is_dir():
            raise ModelUnavailable(
                f"the speech-recognition model folder {self.model} (F5SERVE_ASR_MODEL) does "
                "not exist",
                details={"asr_model": self.model},
            )
        from f5serve.engine.whisper import WhisperRecognizer

        return WhisperRecognizer(self.model, self.device)

    def transcribe(
        self, audio: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        recognizer = self.load()
        with self._lock:
            return recognizer.transcribe(audio, sample_rate, language)


def can_transcribe(recognizer: Recognizer | None) -> bool:
    """Whether there is a recogniser and its backend is installed (no model is loaded)."""
    if isinstance(recognizer, LazyRecognizer):
        return installed()
    return recognizer is not None


def require(recognizer: Recognizer | None, message: str) -> Recognizer:
    """``recognizer``, loaded, for work that needs one; without one, or without the extra,
    :class:`AsrUnavailable` saying ``message``."""
    if recognizer is None or not can_transcribe(recognizer):
        raise AsrUnavailable(message)
    if isinstance(recognizer, LazyRecognizer):
        recognizer.load()
    return recognizer


def missing_ref_text(what: str, field: str = "ref_text") -> str:
    """The error of a clip (``what``) given without its transcript (``field``) where nothing
    can transcribe it."""
    return (
        f"{field} (the transcript of {what}) is required (or install speech recognition, "
        f"{INSTALL_HINT}, to have the clip transcribed)"
    )


# --------------------------------------------------------------------------- error rate


def comparable(text: str, language: str | None = None) -> str:
    """``text`` as the error rate compares it: numbers and abbreviations written out (as the
    synthesised text was), case folded, only letters, marks and digits kept."""
    words = unicodedata.normalize("NFKC", normalize_text(text, language)).casefold()
    return "".join(c for c in words if unicodedata.category(c)[0] in "LMN")


def cer(expected: str, heard: str, language: str | None = None) -> float:
    """Character error rate of ``heard`` against ``expected``: edits (insertions, deletions,
    substitutions) over the length of ``expected``, compared as :func:`comparable` says."""
    want, got = comparable(expected, language), comparable(heard, language)
    if not want:
        return 0.0 if not got else 1.0
    return round(_edits(want, got) / len(want), 4)


def _edits(a: str, b: str) -> int:
    """Levenshtein distance between ``a`` and ``b``."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# --------------------------------------------------------------------------- quality check


@dataclass(frozen=True)
class Attempt:
    """One try of a chunk under the quality check: its seed, what was heard, its error rate."""

    seed: int
    cer: float
    heard: str


def judge(
    recognizer: Recognizer,
    audio: np.ndarray,
    sample_rate: int,
    text: str,
    seed: int,
    language: str | None = None,
) -> Attempt:
    """Transcribe the ``audio`` of a chunk whose text is ``text`` and rate it."""
    heard = recognizer.transcribe(audio, sample_rate, language).text
    return Attempt(seed, cer(text, heard, language), heard)


def next_seed(attempts: Sequence[Attempt], options: SynthesisOptions) -> int | None:
    """The seed of the next try of a chunk: one more than the last try's while that one reads
    worse than ``options.cer_threshold`` and fewer than ``options.max_tries`` were made; None
    when the chunk is done."""
    last = attempts[-1]
    if last.cer <= options.cer_threshold or len(attempts) >= options.max_tries:
        return None
    return last.seed + 1


def best(attempts: Sequence[Attempt]) -> int:
    """Index of the try whose audio is kept: the lowest error rate (the earliest on a tie); a
    try that passed is always the last and the lowest."""
    return min(range(len(attempts)), key=lambda i: attempts[i].cer)
