"""The model list and the voice list, built once for every door: HTTP shapes them as
``/v1/models`` and ``/v1/voices``, RunPod as its ``health`` and ``voices`` answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from f5serve.core.db import VoiceRow
from f5serve.core.jobs.store import as_utc
from f5serve.core.tenants import Tenant
from f5serve.core.voices import VoiceLibrary
from f5serve.registry import ModelRegistry


@dataclass(frozen=True)
class ModelInfo:
    """A model of the catalogue and whether it is loaded."""

    name: str
    languages: list[str]  # ISO 639-1 codes it speaks
    default: bool  # the catalogue's default model
    licence: str | None
    description: str | None
    device: str | None  # where it is loaded ("cpu", "cuda:0"); None if it is not
    bytes: int | None  # its parameters and buffers on that device; None if not loaded

    @property
    def loaded(self) -> bool:
        return self.device is not None


@dataclass(frozen=True)
class VoiceInfo:
    """A voice of the library."""

    id: str
    name: str
    ref_text: str
    language: str | None
    source: str  # "upload" or "directory"
    duration: float  # seconds of the cleaned reference clip, to the millisecond
    created_at: datetime  # UTC
    updated_at: datetime  # UTC
    ref_name: str | None  # "<voices dir>/<name>.wav" for a voice of the voices directory
    pronunciations: dict[str, str]  # {word or /pattern/: replacement} for this voice


def models(registry: ModelRegistry) -> list[ModelInfo]:
    """Every model of the catalogue, in catalogue order."""
    loaded = {m.name: m for m in registry.loaded()}
    infos = []
    for spec in registry.specs():
        on = loaded.get(spec.name)
        infos.append(
            ModelInfo(
                name=spec.name,
                languages=list(spec.languages),
                default=spec.name == registry.default_model,
                licence=spec.licence,
                description=spec.description or None,
                device=on.device if on else None,
                bytes=on.bytes if on else None,
            )
        )
    return infos


def voices(library: VoiceLibrary, tenant: Tenant | None = None) -> list[VoiceInfo]:
    """The voices of the library ``tenant`` sees (all without one), by name (reads the
    database: call it off the event loop)."""
    return [voice(library, row) for row in library.all(tenant)]


def voice(library: VoiceLibrary, row: VoiceRow) -> VoiceInfo:
    created, updated = as_utc(row.created_at), as_utc(row.updated_at)
    assert created is not None and updated is not None
    return VoiceInfo(
        id=row.id,
        name=row.name,
        ref_text=row.ref_text,
        language=row.language,
        source=row.source,
        duration=round(row.duration, 3),
        created_at=created,
        updated_at=updated,
        ref_name=library.ref_name(row),
        pronunciations=dict(row.pronunciations or {}),
    )
