"""The built-in catalogue matches REFERENCE.md §6 plus the models added since (their sources:
docs/models.md), and user models merge into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from f5serve.engine.config import PRESETS
from f5serve.engine.text import TextForm
from f5serve.errors import ConfigError, NotFound
from f5serve.registry import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    Catalog,
    HubFile,
    HubFolder,
    LocalPath,
    ModelSpec,
)
from f5serve.registry.store import pick_checkpoint

# (name, languages, repo, checkpoint, vocab, preset, licence) as REFERENCE.md §6 lists them.
EXPECTED = [
    (
        "f5tts-v1-base",
        ("zh", "en"),
        "SWivid/F5-TTS",
        "F5TTS_v1_Base/model_1250000.safetensors",
        "F5TTS_v1_Base/vocab.txt",
        "F5TTS_v1_Base",
        "cc-by-nc-4.0",
    ),
    (
        "f5tts-base",
        ("zh", "en"),
        "SWivid/F5-TTS",
        "F5TTS_Base/model_1200000.safetensors",
        "F5TTS_Base/vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-4.0",
    ),
    (
        "f5tts-fi",
        ("fi",),
        "AsmoKoskinen/F5-TTS_Finnish_Model",
        "model_common_voice_fi_vox_populi_fi_20241206.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-4.0",
    ),
    (
        "f5tts-fr",
        ("fr",),
        "RASPIAUDIO/F5-French-MixedSpeakers-reduced",
        "model_last_reduced.pt",
        "vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-4.0",
    ),
    (
        "f5tts-de",
        ("de",),
        "hvoss-techfak/F5-TTS-German",
        "model_f5tts_german.pt",
        "vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-4.0",
    ),
    (
        "f5tts-hi",
        ("hi",),
        "SPRINGLab/F5-Hindi-24KHz",
        "model_2500000.safetensors",
        "vocab.txt",
        "F5TTS_Small",
        "cc-by-4.0",
    ),
    (
        "f5tts-it",
        ("it",),
        "alien79/F5-TTS-italian",
        "model_159600.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-4.0",
    ),
    (
        "f5tts-ja",
        ("ja",),
        "Jmica/F5TTS",
        "JA_21999120/model_21999120.pt",
        "JA_21999120/vocab_japanese.txt",
        "F5TTS_Base",
        "cc-by-nc-4.0",
    ),
    (
        "f5tts-lv",
        ("lv",),
        "RaivisDejus/F5-TTS-Latvian",
        "model.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        "cc0-1.0",
    ),
    (
        "f5tts-ru",
        ("ru",),
        "hotstone228/F5-TTS-Russian",
        "model_last.safetensors",
        "vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-4.0",
    ),
    ("f5tts-es", ("es",), "jpgallegoar/F5-Spanish", None, "vocab.txt", "F5TTS_Base", "cc0-1.0"),
]


EXPECTED += [
    (
        "f5tts-vi",
        ("vi",),
        "hynt/F5-TTS-Vietnamese-ViVoice",
        "model_last.pt",
        "config.json",  # the vocabulary, renamed on the Hub
        "F5TTS_Base",
        "cc-by-nc-sa-4.0",
    ),
    (
        "f5tts-vi-100h",
        ("vi",),
        "hynt/F5-TTS-Vietnamese-100h",
        "model_500000.pt",
        "vocab.txt",
        "F5TTS_Base",
        "cc-by-nc-sa-4.0",
    ),
]


@pytest.mark.parametrize("row", EXPECTED, ids=[r[0] for r in EXPECTED])
def test_builtin_model_matches_the_reference_table(row: tuple[object, ...]) -> None:
    name, languages, repo, checkpoint, vocab, preset, licence = row
    spec = Catalog.builtin().get(str(name))
    assert spec.languages == languages
    assert spec.checkpoint == HubFile(str(repo), checkpoint)  # type: ignore[arg-type]
    assert spec.vocab == HubFile(str(repo), str(vocab))
    assert spec.arch == preset and spec.arch in PRESETS
    assert spec.licence == licence
    assert spec.vocoder == HubFolder("charactr/vocos-mel-24khz")
    assert spec.builtin


def test_catalogue_holds_exactly_the_reference_models_with_the_v1_base_as_default() -> None:
    catalog = Catalog.builtin()
    assert catalog.names() == [r[0] for r in EXPECTED]
    assert catalog.default_name == DEFAULT_MODEL == "f5tts-v1-base"
    assert catalog.default.languages == ("zh", "en")
    assert catalog.languages() == sorted(
        ["zh", "en", "fi", "fr", "de", "hi", "it", "ja", "lv", "ru", "es", "vi"]
    )


def test_vietnamese_models_read_lower_case_nfc_text_and_the_others_text_as_written() -> None:
    catalog = Catalog.builtin()
    vietnamese = {m.name for m in catalog.serving("vi")}
    assert vietnamese == {"f5tts-vi", "f5tts-vi-100h"}
    assert catalog.serving("vi")[0].name == "f5tts-vi"  # the 1000-hour model first
    for spec in catalog.models:
        expected = TextForm("NFC", lowercase=True) if spec.name in vietnamese else TextForm()
        assert spec.text_form == expected, spec.name


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match="unknown model 'f5tts-xx'; known models: f5tts-v1-base"):
        Catalog.builtin().get("f5tts-xx")


def test_default_model_comes_first_among_models_that_speak_a_language() -> None:
    catalog = Catalog.builtin()
    assert [m.name for m in catalog.serving("en")] == ["f5tts-v1-base", "f5tts-base"]
    assert [m.name for m in catalog.serving("de")] == ["f5tts-de"]
    assert catalog.serving("sw") == []


def test_user_models_are_preferred_over_builtins_but_not_over_the_default() -> None:
    user = ModelSpec(
        "narrator-de",
        ("de", "en"),
        LocalPath(Path("ckpt.safetensors")),
        LocalPath(Path("vocab.txt")),
        "F5TTS_Base",
    )
    catalog = Catalog((*BUILTIN_MODELS, user))
    assert [m.name for m in catalog.serving("de")] == ["narrator-de", "f5tts-de"]
    assert catalog.serving("en")[0].name == "f5tts-v1-base"


def test_catalogue_refuses_duplicate_names_and_a_missing_default() -> None:
    with pytest.raises(ConfigError, match="unique"):
        Catalog((BUILTIN_MODELS[0], BUILTIN_MODELS[0]))
    with pytest.raises(ConfigError, match="default model 'nope'"):
        Catalog(BUILTIN_MODELS, default_name="nope")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            ["vocab.txt", "model_1200000.safetensors", "model_1250000.safetensors"],
            "model_1250000.safetensors",
        ),
        (["model_900.pt", "model_1000.pt", "vocab.txt"], "model_1000.pt"),
        (["model_2000.pt", "model_10.safetensors"], "model_10.safetensors"),
        (["ckpts/model_99999.safetensors", "model_1.safetensors"], "model_1.safetensors"),
        (["README.md", "vocab.txt"], None),
    ],
)
def test_checkpoint_is_picked_from_a_listing(files: list[str], expected: str | None) -> None:
    assert pick_checkpoint(files) == expected
