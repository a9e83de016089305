"""The voice library: named, prepared reference clips."""

from f5serve.core.voices.library import VoiceLibrary, VoiceLimits

__all__ = ["VoiceLibrary", "VoiceLimits"]
