"""Which models exist: the built-in catalogue of public F5-TTS models, and user-defined models.

A model is a :class:`ModelSpec`: its languages, where its checkpoint, vocab and vocoder live
(a Hugging Face repository or a local path), its architecture and its licence. A :class:`Catalog`
is an immutable, ordered set of specs with one default model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from f5serve.engine.config import DiTConfig
from f5serve.engine.text import AS_WRITTEN, TextForm
from f5serve.errors import ConfigError, NotFound

VOCOS_REPO = "charactr/vocos-mel-24khz"
VOCODER_FILES = ("config.yaml", "pytorch_model.bin")  # what a vocoder folder must hold
DEFAULT_MODEL = "f5tts-v1-base"


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face model repository."""

    repo: str  # "owner/name"
    path: str | None  # path inside the repository; None = pick the checkpoint from the listing
    revision: str | None = None  # branch, tag or commit; None = "main"

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo}{rev}/{self.path or '<checkpoint from listing>'}"


@dataclass(frozen=True)
class HubFolder:
    """A folder of a Hugging Face repository (the vocoder: ``config.yaml`` + weights)."""

    repo: str  # "owner/name"
    subfolder: str = ""  # "" = the repository root
    revision: str | None = None  # branch, tag or commit; None = "main"

    def file(self, name: str) -> HubFile:
        """The :class:`HubFile` of ``name`` inside this folder."""
        path = f"{self.subfolder}/{name}" if self.subfolder else name
        return HubFile(self.repo, path, self.revision)

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        sub = f"/{self.subfolder}" if self.subfolder else ""
        return f"hf://{self.repo}{rev}{sub}"


@dataclass(frozen=True)
class LocalPath:
    """A file or folder on this machine."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


FileSource = HubFile | LocalPath
FolderSource = HubFolder | LocalPath

VOCOS = HubFolder(VOCOS_REPO)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to find, download and load one model."""

    name: str  # stable slug, e.g. "f5tts-v1-base"
    languages: tuple[str, ...]  # ISO 639-1 codes it speaks, e.g. ("zh", "en")
    checkpoint: FileSource  # .safetensors or .pt weights
    vocab: FileSource  # vocab.txt that ships with the checkpoint
    arch: str | DiTConfig  # preset name (engine.config.PRESETS) or explicit dims
    vocoder: FolderSource = VOCOS  # Vocos folder (config.yaml + pytorch_model.bin)
    licence: str | None = None  # licence of the weights, as the model card states it
    description: str = ""  # one line for listings
    builtin: bool = False  # True for the catalogue shipped with f5serve
    text_form: TextForm = AS_WRITTEN  # Unicode form and case of its training text

    def sources(self) -> tuple[FileSource | FolderSource, ...]:
        """Checkpoint, vocab and vocoder, in that order."""
        return (self.checkpoint, self.vocab, self.vocoder)


def _hub(
    name: str,
    languages: tuple[str, ...],
    repo: str,
    checkpoint: str | None,
    vocab: str,
    arch: str,
    licence: str,
    description: str,
    text_form: TextForm = AS_WRITTEN,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        languages=languages,
        checkpoint=HubFile(repo, checkpoint),
        vocab=HubFile(repo, vocab),
        arch=arch,
        licence=licence,
        description=description,
        builtin=True,
        text_form=text_form,
    )


# The Vietnamese models of hynt (Nguyen Thien Hy), checked against their model cards and the
# author's inference code (sources: docs/models.md, "Vietnamese"):
# - arch: F5TTS_Base (v0): fine-tuned from SWivid/F5-TTS F5TTS_Base/model_1200000.pt with the
#   vocabulary extended (card: "Base Model: F5-TTS_Base", `f5-tts_infer-cli --model F5TTS_Base`;
#   the author's demo Space builds DiT(dim=1024, depth=22, heads=16, ff_mult=2, text_dim=512,
#   conv_layers=4) on its own copy of f5_tts), Vocos vocoder (`--vocoder_name vocos`), 24 kHz /
#   100 mels / hop 256 like the official models;
# - text: trained on lower-case transcripts ("Normalize to lowercase format"), tokenised by
#   upstream's `convert_char_to_pinyin` (characters, as here); the demo lower-cases both the
#   reference text and the text to speak. NFC is assumed, not stated by the author: text typed
#   in Vietnamese is normally precomposed, and other Vietnamese F5 demos normalise to NFC.
# - ViVoice: the vocabulary was renamed from vocab.txt to config.json on the Hub (the card says
#   to rename it back); the checkpoint is a 5.4 GB training file (model, EMA, optimizer), of
#   which the EMA weights are used.
# - 100h: its card calls it "F5-TTS-Vietnamese-150h" (150 hours), stopped at 500,000 steps.
# Both repositories are gated (access requests need an institutional address); cc-by-nc-sa-4.0.
VIETNAMESE = TextForm("NFC", lowercase=True)


NC = "cc-by-nc-4.0"
BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    _hub(
        DEFAULT_MODEL,
        ("zh", "en"),
        "SWivid/F5-TTS",
        "F5TTS_v1_Base/model_1250000.safetensors",
        "F5TTS_v1_Base/vocab.txt",
        "F5TTS_v1_Base",
        NC,
        "official F5-TTS v1 Base, Chinese and English (default)",
    ),
    _hub(
        "f5tts-base",
        ("zh", "en"),
        "SWivid/F5-TTS",
        "F5TTS_Base/model_1200000.safetensors",
        "F5TTS_Base/vocab.txt",
        "F5TTS_Base",
        NC,
        "official F5-TTS Base (v0), Chinese and English",
    ),
    _hub(
        "f5tts-fi",
        ("fi",),
        "AsmoKoskinen/F5-TTS_Finnish_Model",
        "model_common_voice_fi_vox_populi_fi_20241206.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        NC,
        "Finnish community fine-tune",
    ),
    _hub(
        "f5tts-fr",
        ("fr",),
        "RASPIAUDIO/F5-French-MixedSpeakers-reduced",
        "model_last_reduced.pt",
        "vocab.txt",
        "F5TTS_Base",
        NC,
        "French community fine-tune",
    ),
    _hub(
        "f5tts-de",
        ("de",),
        "hvoss-techfak/F5-TTS-German",
        "model_f5tts_german.pt",
        "vocab.txt",
        "F5TTS_Base",
        NC,
        "German community fine-tune",
    ),
    _hub(
        "f5tts-hi",
        ("hi",),
        "SPRINGLab/F5-Hindi-24KHz",
        "model_2500000.safetensors",
        "vocab.txt",
        "F5TTS_Small",
        "cc-by-4.0",
        "Hindi community model (Small)",
    ),
    _hub(
        "f5tts-it",
        ("it",),
        "alien79/F5-TTS-italian",
        "model_159600.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        NC,
        "Italian community fine-tune",
    ),
    _hub(
        "f5tts-ja",
        ("ja",),
        "Jmica/F5TTS",
        "JA_21999120/model_21999120.pt",
        "JA_21999120/vocab_japanese.txt",
        "F5TTS_Base",
        NC,
        "Japanese community fine-tune",
    ),
    _hub(
        "f5tts-lv",
        ("lv",),
        "RaivisDejus/F5-TTS-Latvian",
        "model.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        "cc0-1.0",
        "Latvian community fine-tune",
    ),
    _hub(
        "f5tts-ru",
        ("ru",),
        "hotstone228/F5-TTS-Russian",
        "model_last.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        NC,
        "Russian community fine-tune",
    ),
    _hub(
        "f5tts-es",
        ("es",),
        "jpgallegoar/F5-Spanish",
        None,  # not named on the model card: resolved from the repository listing
        "vocab.txt",
        "F5TTS_Base",
        "cc0-1.0",
        "Spanish community fine-tune",
    ),
    _hub(
        "f5tts-vi",
        ("vi",),
        "hynt/F5-TTS-Vietnamese-ViVoice",
        "model_last.pt",
        "config.json",  # the vocabulary, under this name on the Hub
        "F5TTS_Base",
        "cc-by-nc-sa-4.0",
        "Vietnamese, 1000 h (ViVoice, VLSP); gated: request access on the Hub",
        VIETNAMESE,
    ),
    _hub(
        "f5tts-vi-100h",
        ("vi",),
        "hynt/F5-TTS-Vietnamese-100h",
        "model_500000.pt",
        "vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-sa-4.0",
        "Vietnamese, 150 h (VLSP, VietTTS, ...); gated: request access on the Hub",
        VIETNAMESE,
    ),
)


@dataclass(frozen=True)
class Catalog:
    """An ordered set of models with one default.

    Order matters for routing: when several models speak a language, the default model wins,
    then user-defined models in file order, then the built-in ones in catalogue order.
    """

    models: tuple[ModelSpec, ...]
    default_name: str = DEFAULT_MODEL
    models_file: Path | None = None  # the user file the catalogue was read with, if any
    _by_name: dict[str, ModelSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {m.name: m for m in self.models}
        if len(by_name) != len(self.models):
            raise ConfigError("model names in a catalogue must be unique")
        if self.default_name not in by_name:
            raise ConfigError(f"default model {self.default_name!r} is not in the catalogue")
        object.__setattr__(self, "_by_name", by_name)

    @classmethod
    def builtin(cls) -> Catalog:
        """The models f5serve knows out of the box."""
        return cls(BUILTIN_MODELS)

    @property
    def default(self) -> ModelSpec:
        """The model used when nothing else decides."""
        return self._by_name[self.default_name]

    def names(self) -> list[str]:
        """Model names in catalogue order."""
        return [m.name for m in self.models]

    def get(self, name: str) -> ModelSpec:
        """The model called ``name``; :class:`NotFound` lists the known names."""
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound(
                f"unknown model {name!r}; known models: {', '.join(self.names())}",
                details={"model": name, "known": self.names()},
            ) from None

    def languages(self) -> list[str]:
        """Every language some model speaks, sorted."""
        return sorted({lang for m in self.models for lang in m.languages})

    def serving(self, language: str) -> list[ModelSpec]:
        """Models that speak ``language``, best first (default, user-defined, built-in)."""
        speakers = [m for m in self.models if language in m.languages]
        return sorted(speakers, key=lambda m: (m.name != self.default_name, m.builtin))
