"""The voice library: named, prepared reference clips."""

from f5serve.core.voices.library import TranscriptCheck, VoiceLibrary, VoiceLimits

__all__ = ["TranscriptCheck", "VoiceLibrary", "VoiceLimits"]
