"""User-defined models from TOML: what parses, and errors that name file, entry and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from f5serve.engine.config import DiTConfig
from f5serve.engine.text import TextForm
from f5serve.errors import ConfigError
from f5serve.registry import HubFile, HubFolder, LocalPath, load_catalog, read_models_file
from f5serve.registry.catalog import VOCOS
from f5serve.registry.models_file import parse_hf_uri

GOOD = """
[[models]]
name = "narrator-en"
languages = ["en"]
checkpoint = "hf://owner/repo/ckpt/model.safetensors"
vocab = "hf://owner/repo@v2/vocab.txt"
arch = "F5TTS_v1_Base"
vocoder = "hf://charactr/vocos-mel-24khz"
default = true
licence = "cc-by-4.0"

[[models]]
name = "local-tiny"
languages = ["de", "en"]
checkpoint = "weights/tiny.safetensors"
vocab = "weights/vocab.txt"
arch = { dim = 64, depth = 2, heads = 4, text_dim = 32, conv_layers = 2 }
vocoder = "vocos"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "weights").mkdir(exist_ok=True)
    (tmp_path / "weights" / "tiny.safetensors").write_bytes(b"x")
    (tmp_path / "weights" / "vocab.txt").write_text("a\n")
    (tmp_path / "vocos").mkdir(exist_ok=True)
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_models_file_parses_hub_uris_local_paths_and_inline_arch(tmp_path: Path) -> None:
    specs, default = read_models_file(write(tmp_path, GOOD))
    narrator, tiny = specs
    assert default == "narrator-en"
    assert narrator.checkpoint == HubFile("owner/repo", "ckpt/model.safetensors")
    assert narrator.vocab == HubFile("owner/repo", "vocab.txt", "v2")
    assert narrator.vocoder == HubFolder("charactr/vocos-mel-24khz")
    assert narrator.licence == "cc-by-4.0" and not narrator.builtin
    # Relative local paths are relative to the TOML file's folder.
    assert tiny.checkpoint == LocalPath(tmp_path / "weights" / "tiny.safetensors")
    assert tiny.vocoder == LocalPath(tmp_path / "vocos")
    assert tiny.arch == DiTConfig(dim=64, depth=2, heads=4, text_dim=32, conv_layers=2)
    assert tiny.languages == ("de", "en")


def test_text_form_of_a_user_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ENTRY.format(
            body='name = "vi"\nlanguages = ["vi"]\ncheckpoint = "hf://o/r/m.pt"\n'
            'vocab = "hf://o/r/vocab.txt"\narch = "F5TTS_Base"\n'
            'unicode_form = "NFC"\nlowercase = true'
        ),
    )
    catalog = load_catalog(path, {})
    assert catalog.get("vi").text_form == TextForm("NFC", lowercase=True)
    assert catalog.get("first").text_form == TextForm()  # as written unless the file says


def test_the_example_models_file_makes_the_repository_tiny_model_the_default() -> None:
    path = Path(__file__).parents[2] / "examples" / "tiny-models.toml"
    catalog = load_catalog(path, {})
    tiny = catalog.get("tiny")
    assert catalog.default_name == "tiny"
    for local in (tiny.checkpoint, tiny.vocab, tiny.vocoder):
        assert isinstance(local, LocalPath) and local.path.exists(), local


def test_catalogue_from_the_environment_adds_user_models_and_their_default(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, GOOD)
    catalog = load_catalog(environ={"F5SERVE_MODELS_FILE": str(path)})
    assert catalog.default_name == "narrator-en"
    assert catalog.names()[-2:] == ["narrator-en", "local-tiny"]
    assert catalog.models_file == path
    assert "f5tts-v1-base" in catalog.names()
    # An explicit file wins over the environment; no file at all gives the built-ins.
    assert load_catalog(environ={}).names() == load_catalog(None, {}).names()
    assert len(load_catalog(environ={}).models) == 13


def test_user_model_with_a_builtin_name_replaces_it_in_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[models]]
name = "f5tts-fr"
languages = ["fr"]
checkpoint = "weights/tiny.safetensors"
vocab = "weights/vocab.txt"
arch = "F5TTS_Base"
""",
    )
    catalog = load_catalog(path, {})
    spec = catalog.get("f5tts-fr")
    assert isinstance(spec.checkpoint, LocalPath) and not spec.builtin
    assert spec.vocoder == VOCOS
    assert catalog.names().index("f5tts-fr") == 3
    assert len(catalog.models) == 13


ENTRY = """
[[models]]
name = "first"
languages = ["en"]
checkpoint = "hf://o/r/a.safetensors"
vocab = "hf://o/r/vocab.txt"
arch = "F5TTS_Base"

[[models]]
{body}
"""
VALID = {
    "name": '"second"',
    "languages": '["fr"]',
    "checkpoint": '"hf://o/r/b.safetensors"',
    "vocab": '"hf://o/r/vocab.txt"',
    "arch": '"F5TTS_Base"',
}


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"vocab": None}, "vocab", "is required"),
        ({"languages": '["english"]'}, "languages", "ISO 639-1"),
        ({"languages": "[]"}, "languages", "non-empty list"),
        ({"arch": '"F5TTS_v9"'}, "arch", "must be a preset"),
        ({"arch": "{ dim = 64 }"}, "arch", "missing required option(s): depth, heads"),
        ({"checkpoint": '"missing.safetensors"'}, "checkpoint", "file not found"),
        ({"checkpoint": '"hf://onlyowner"'}, "checkpoint", "not hf://owner/repo"),
        ({"vocab": '"hf://o/r"'}, "vocab", "names a repository but no file"),
        ({"vocoder": '"no-such-dir"'}, "vocoder", "folder not found"),
        ({"langauges": '["fr"]'}, "langauges", "unknown field"),
        ({"name": '"Has Spaces"'}, "name", "lowercase letters"),
        ({"name": '"first"'}, "name", "repeats an earlier entry"),
        ({"default": '"yes"'}, "default", "true or false"),
        ({"lowercase": "1"}, "lowercase", "true or false"),
        ({"unicode_form": '"nfc"'}, "unicode_form", "must be one of NFC, NFD, NFKC, NFKD"),
    ],
)
def test_invalid_entry_names_file_entry_and_field(
    tmp_path: Path, change: dict[str, str | None], field: str, problem: str
) -> None:
    fields = {**VALID, **change}
    body = "\n".join(f"{k} = {v}" for k, v in fields.items() if v is not None)
    path = write(tmp_path, ENTRY.format(body=body))
    with pytest.raises(ConfigError) as caught:
        read_models_file(path)
    message = caught.value.message
    name = str(fields["name"]).strip('"')
    assert message.startswith(f"{path}: models[1] ({name!r}): "), message
    assert f"field {field!r}" in message
    assert problem in message


def test_two_defaults_and_bad_toml_are_refused_naming_the_file(tmp_path: Path) -> None:
    two = ENTRY.replace('arch = "F5TTS_Base"\n', 'arch = "F5TTS_Base"\ndefault = true\n', 1)
    body = "\n".join(f"{k} = {v}" for k, v in VALID.items()) + "\ndefault = true"
    path = write(tmp_path, two.format(body=body))
    with pytest.raises(ConfigError, match="more than one model has default = true: first, second"):
        read_models_file(path)
    path.write_text("[[models]\nname = ")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML"):
        read_models_file(path)
    with pytest.raises(ConfigError, match="models file not found"):
        load_catalog(tmp_path / "absent.toml", {})


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("hf://owner/repo", ("owner/repo", None, "")),
        ("hf://owner/repo/a/b.pt", ("owner/repo", None, "a/b.pt")),
        ("hf://owner/repo@v1.0/vocab.txt", ("owner/repo", "v1.0", "vocab.txt")),
    ],
)
def test_hf_uris_split_into_repo_revision_and_path(
    uri: str, expected: tuple[str, str | None, str]
) -> None:
    assert parse_hf_uri(uri) == expected
