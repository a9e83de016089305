"""The speech-recognition backend: a Whisper model through the ``transformers`` pipeline, as
upstream F5-TTS transcribes references (``openai/whisper-large-v3-turbo`` there).

Imported only through :class:`~f5serve.engine.asr.LazyRecognizer`: it needs the optional extra
``f5serve[asr]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import pipeline

from f5serve.engine import audio as audio_io
from f5serve.engine.asr import Transcript
from f5serve.engine.devices import resolve_device
from f5serve.errors import ModelUnavailable

WHISPER_RATE = 16_000  # Whisper's feature extractor reads 16 kHz audio
CHUNK_SECONDS = 30  # longer audio is read in windows of Whisper's own length


class WhisperRecognizer:
    """A Whisper checkpoint (a Hugging Face repository, or a local folder with its config,
    weights, tokenizer and feature extractor) on ``device`` (default: the best available;
    float16 on CUDA)."""

    def __init__(self, model: str, device: str | None = None) -> None:
        dev, dtype = resolve_device(device, None)
        try:
            self.pipe: Any = pipeline(
                "automatic-speech-recognition", model=model, device=dev, dtype=dtype
            )
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(
                f"the speech-recognition model {model!r} (F5SERVE_ASR_MODEL) cannot be "
                f"loaded: {exc}",
                details={"asr_model": model},
            ) from None
        generation = self.pipe.model.generation_config
        self.languages: dict[str, int] = getattr(generation, "lang_to_id", None) or {}
        self.multitask = bool(getattr(generation, "task_to_id", None))

    def transcribe(
        self, audio: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        samples = audio_io.resample(np.asarray(audio, dtype=np.float32), sample_rate, WHISPER_RATE)
        out = self.pipe(
            {"raw": samples, "sampling_rate": WHISPER_RATE},
            chunk_length_s=CHUNK_SECONDS,
            generate_kwargs=self._generate_kwargs(language),
        )
        return Transcript(str(out["text"]).strip())

    def _generate_kwargs(self, language: str | None) -> dict[str, Any]:
        """Transcribe (not translate), in ``language`` when the model knows it (else Whisper
        detects it); a model without tasks or languages is given neither."""
        kwargs: dict[str, Any] = {}
        if self.multitask:
            kwargs["task"] = "transcribe"
        if language is not None and f"<|{language}|>" in self.languages:
            kwargs["language"] = language
        return kwargs
