"""f5serve: self-hosted, production-grade serving for F5-TTS zero-shot voice cloning.

The engine's names are imported on first use, so ``import f5serve.client`` stays light (no
torch)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from f5serve.engine.options import SynthesisOptions
    from f5serve.engine.pipeline import Engine, Progress, SynthesisResult, Timings

__version__ = "0.1.0"

__all__ = ["Engine", "Progress", "SynthesisOptions", "SynthesisResult", "Timings", "__version__"]

_HOMES = {
    "SynthesisOptions": "f5serve.engine.options",
    "Engine": "f5serve.engine.pipeline",
    "Progress": "f5serve.engine.pipeline",
    "SynthesisResult": "f5serve.engine.pipeline",
    "Timings": "f5serve.engine.pipeline",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'f5serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
