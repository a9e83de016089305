"""Shared pytest fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """Directory of the golden reference fixtures (copied from the reference implementation)."""
    return GOLDEN


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Directory of the test fixtures (real speech clips, golden files)."""
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_model_files() -> dict[str, Any]:
    """Keyword arguments of ``Engine.from_files`` for the tiny golden v1 model."""
    return {
        "checkpoint": GOLDEN / "dit_v1.safetensors",
        "vocab": GOLDEN / "vocab.txt",
        "arch": json.loads((GOLDEN / "dit_v1.json").read_text()),
        "vocoder": GOLDEN / "vocos",
    }
