"""Shared helpers of the service tests: a tiny-model deployment in a folder, audio decoding."""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import uvicorn

from f5serve.core.settings import Settings
from f5serve.engine.audio import load_audio

FIXTURES = Path(__file__).parents[1] / "fixtures"
GOLDEN = FIXTURES / "golden"
REF_WAV = FIXTURES / "basic_ref_en.wav"
REF_TEXT = "Some call me nature, others call me mother nature."

MODELS_TOML = f"""
[[models]]
name = "tiny"
languages = ["en", "zh"]
checkpoint = "{GOLDEN / "dit_v1.safetensors"}"
vocab = "{GOLDEN / "vocab.txt"}"
arch = "tiny_v1"
vocoder = "{GOLDEN / "vocos"}"
default = true
"""


def make_deployment(root: Path) -> dict[str, Any]:
    """Models file, voices directory (``narrator``), database and storage under ``root``;
    returns the settings fields (also usable as F5SERVE_* variables)."""
    (root / "models.toml").write_text(MODELS_TOML)
    voices = root / "sample"
    voices.mkdir(exist_ok=True)
    shutil.copy(REF_WAV, voices / "narrator.wav")
    (voices / "narrator.txt").write_text(REF_TEXT)
    return {
        "models_file": root / "models.toml",
        "voices_dir": voices,
        "database_url": f"sqlite:///{root / 'data' / 'f5serve.db'}",
        "storage_url": str(root / "data" / "storage"),
        "cache_dir": root / "cache",
        "device": "cpu",
        "nfe_steps": 2,
        "preload": True,
        "job_workers": 2,
        # speech recognition has its own tests (test_api_asr.py): elsewhere a given transcript
        # is not checked, and a clip without one fails at once (no model, no download)
        "check_ref_text": False,
        "asr_model": str(root / "no-asr-model"),
    }


def make_settings(root: Path, **overrides: Any) -> Settings:
    fields = make_deployment(root) | overrides
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


def decode(data: bytes, fmt: str = "wav") -> tuple[np.ndarray, int]:
    """Decode what the API returned: (mono float32 samples, sample rate)."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768, 24000
    return load_audio(data)


def assert_speech(data: bytes, fmt: str = "wav", min_seconds: float = 0.3) -> float:
    """The bytes decode to non-silent 24 kHz audio of a plausible length; returns seconds."""
    audio, sr = decode(data, fmt)
    if fmt not in ("opus", "ogg"):  # Opus always decodes at 48 kHz
        assert sr == 24000, sr
    seconds = len(audio) / sr
    assert min_seconds < seconds < 60, seconds
    assert float(np.sqrt(np.mean(audio**2))) > 1e-3, "audio is silent"
    return seconds


def wav_bytes(audio: np.ndarray, sr: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sr, format=fmt)
    return buffer.getvalue()


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """``app`` served by a real uvicorn on a loopback port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server did not start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def wait_until(condition: Callable[[], object], message: str, timeout: float = 60) -> None:
    """Poll ``condition`` until it is true (failing with ``message`` after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)
