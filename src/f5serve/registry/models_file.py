"""User-defined models from a TOML file (``F5SERVE_MODELS_FILE`` or ``--models-file``).

```toml
[[models]]
name = "narrator-en"
languages = ["en"]
checkpoint = "hf://owner/repo/model.safetensors"   # or a local path
vocab = "hf://owner/repo/vocab.txt"
arch = "F5TTS_v1_Base"                             # or an inline table of dims
vocoder = "hf://charactr/vocos-mel-24khz"          # or a local directory (optional)
default = true                                     # optional
licence = "cc-by-4.0"                              # optional
description = "Our narrator"                       # optional
unicode_form = "NFC"                               # optional: Unicode form of its training text
lowercase = true                                   # optional: trained on lower-case text
```

Every mistake is a :class:`ConfigError` naming the file, the entry (index and name) and the field.
Relative local paths are relative to the folder of the TOML file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from f5serve.engine.config import PRESETS, DiTConfig, resolve_arch
from f5serve.engine.text import UNICODE_FORMS, TextForm
from f5serve.errors import ConfigError, F5ServeError
from f5serve.registry.catalog import (
    VOCOS,
    Catalog,
    FileSource,
    FolderSource,
    HubFile,
    HubFolder,
    LocalPath,
    ModelSpec,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MODELS_FILE_ENV = "F5SERVE_MODELS_FILE"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FIELDS = {
    "name",
    "languages",
    "checkpoint",
    "vocab",
    "arch",
    "vocoder",
    "default",
    "licence",
    "license",
    "description",
    "unicode_form",
    "lowercase",
}


class _EntryError(Exception):
    """A problem with one field of one entry (turned into a ConfigError with context)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def parse_hf_uri(uri: str) -> tuple[str, str | None, str]:
    """``hf://owner/repo[@revision][/path]`` → (repo, revision, path or "")."""
    rest = uri[len("hf://") :].strip("/")
    parts = rest.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"{uri!r} is not hf://owner/repo[/path]")
    name, _, revision = parts[1].partition("@")
    repo = f"{parts[0]}/{name}"
    if not _REPO.match(repo):
        raise ValueError(f"{uri!r} does not name a repository as owner/name")
    return repo, revision or None, parts[2] if len(parts) == 3 else ""


def _local(value: str, base: Path) -> Path:
    path = Path(os.path.expandvars(value)).expanduser()
    return path if path.is_absolute() else (base / path)


def _file_source(field: str, value: Any, base: Path, *, listing_ok: bool) -> FileSource:
    if not isinstance(value, str) or not value.strip():
        raise _EntryError(field, "must be a non-empty string (hf://owner/repo/path or a path)")
    if value.startswith("hf://"):
        try:
            repo, revision, path = parse_hf_uri(value)
        except ValueError as exc:
            raise _EntryError(field, str(exc)) from None
        if not path and not listing_ok:
            raise _EntryError(field, f"{value!r} names a repository but no file in it")
        return HubFile(repo, path or None, revision)
    local = _local(value, base)
    if not local.is_file():
        raise _EntryError(field, f"file not found: {local}")
    return LocalPath(local)


def _folder_source(field: str, value: Any, base: Path) -> FolderSource:
    if not isinstance(value, str) or not value.strip():
        raise _EntryError(field, "must be a non-empty string (hf://owner/repo or a folder)")
    if value.startswith("hf://"):
        try:
            repo, revision, path = parse_hf_uri(value)
        except ValueError as exc:
            raise _EntryError(field, str(exc)) from None
        return HubFolder(repo, path, revision)
    local = _local(value, base)
    if not local.is_dir():
        raise _EntryError(field, f"folder not found: {local}")
    return LocalPath(local)


def _arch(value: Any, base: Path) -> str | DiTConfig:
    if isinstance(value, Mapping):
        try:
            return DiTConfig.from_dict(value)
        except (F5ServeError, TypeError) as exc:
            raise _EntryError("arch", str(exc)) from None
    if isinstance(value, str) and value in PRESETS:
        return value
    if isinstance(value, str) and value.endswith(".json"):
        try:
            return resolve_arch(_local(value, base))
        except (F5ServeError, ValueError) as exc:
            raise _EntryError("arch", str(exc)) from None
    raise _EntryError(
        "arch", f"must be a preset ({', '.join(PRESETS)}), a .json file or a table of dims"
    )


def _languages(value: Any) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and _LANGUAGE.match(v) for v in value)
    ):
        raise _EntryError(
            "languages", 'must be a non-empty list of ISO 639-1 codes such as ["en", "de"]'
        )
    return tuple(dict.fromkeys(value))


def _optional_str(entry: Mapping[str, Any], field: str) -> str | None:
    value = entry.get(field)
    if value is not None and not isinstance(value, str):
        raise _EntryError(field, "must be a string")
    return value


def _check_fields(entry: Mapping[str, Any]) -> None:
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise _EntryError(unknown[0], f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    for required in ("name", "languages", "checkpoint", "vocab", "arch"):
        if required not in entry:
            raise _EntryError(required, "is required")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise _EntryError(
            "name", "must be 1-64 characters of lowercase letters, digits, '.', '_' or '-'"
        )
    for flag in ("default", "lowercase"):
        if not isinstance(entry.get(flag, False), bool):
            raise _EntryError(flag, "must be true or false")


def _text_form(entry: Mapping[str, Any]) -> TextForm:
    form = entry.get("unicode_form")
    if form is not None and form not in UNICODE_FORMS:
        raise _EntryError("unicode_form", f"must be one of {', '.join(UNICODE_FORMS)}")
    return TextForm(form, lowercase=entry.get("lowercase", False))


def parse_entry(entry: Mapping[str, Any], base: Path) -> tuple[ModelSpec, bool]:
    """One ``[[models]]`` table → (spec, is_default); raises :class:`_EntryError`."""
    _check_fields(entry)
    vocoder = entry.get("vocoder")
    spec = ModelSpec(
        name=entry["name"],
        languages=_languages(entry["languages"]),
        checkpoint=_file_source("checkpoint", entry["checkpoint"], base, listing_ok=True),
        vocab=_file_source("vocab", entry["vocab"], base, listing_ok=False),
        arch=_arch(entry["arch"], base),
        vocoder=VOCOS if vocoder is None else _folder_source("vocoder", vocoder, base),
        licence=_optional_str(entry, "licence") or _optional_str(entry, "license"),
        description=_optional_str(entry, "description") or "",
        text_form=_text_form(entry),
    )
    return spec, bool(entry.get("default", False))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"models file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read models file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def read_models_file(path: str | Path) -> tuple[list[ModelSpec], str | None]:
    """Parse a models file → (user models in file order, name of the one marked default)."""
    path = Path(path).expanduser()
    data = _read_toml(path)
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r} (expected [[models]])")
    entries = data.get("models", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: 'models' must be an array of tables ([[models]])")
    specs: list[ModelSpec] = []
    defaults: list[str] = []
    for i, entry in enumerate(entries):
        label = f"models[{i}]" + (
            f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else ""
        )
        try:
            spec, is_default = parse_entry(entry, path.parent)
        except _EntryError as exc:
            raise ConfigError(
                f"{path}: {label}: field {exc.field!r} {exc.problem}",
                details={"file": str(path), "entry": i, "field": exc.field},
            ) from None
        if any(s.name == spec.name for s in specs):
            raise ConfigError(f"{path}: {label}: field 'name' repeats an earlier entry")
        specs.append(spec)
        if is_default:
            defaults.append(spec.name)
    if len(defaults) > 1:
        raise ConfigError(f"{path}: more than one model has default = true: {', '.join(defaults)}")
    return specs, (defaults[0] if defaults else None)


def merge(base: Catalog, user: list[ModelSpec], default: str | None, source: Path) -> Catalog:
    """``base`` with ``user`` models added; a user model replaces a built-in of the same name."""
    replaced = {s.name: s for s in user}
    models = [replaced.pop(m.name, m) for m in base.models]
    models.extend(s for s in user if s.name in replaced)
    return dataclasses.replace(
        base,
        models=tuple(models),
        default_name=default or base.default_name,
        models_file=source,
    )


def load_catalog(
    models_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Catalog:
    """Built-in models plus those of ``models_file`` (else ``$F5SERVE_MODELS_FILE``)."""
    env = os.environ if environ is None else environ
    chosen = models_file or env.get(MODELS_FILE_ENV) or None
    catalog = Catalog.builtin()
    if chosen is None:
        return catalog
    path = Path(chosen).expanduser()
    user, default = read_models_file(path)
    return merge(catalog, user, default, path)
