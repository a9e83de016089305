"""f5serve: self-hosted, production-grade serving for F5-TTS zero-shot voice cloning."""

from f5serve.engine.options import SynthesisOptions
from f5serve.engine.pipeline import Engine, Progress, SynthesisResult, Timings

__version__ = "0.1.0"

__all__ = ["Engine", "Progress", "SynthesisOptions", "SynthesisResult", "Timings", "__version__"]
