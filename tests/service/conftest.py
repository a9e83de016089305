"""Fixtures of the service tests: one app on the tiny golden model, driven in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from helpers import make_settings

from f5serve.http.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A started app (voices imported, tiny model loaded) shared by a test module."""
    root = tmp_path_factory.mktemp("f5serve")
    with TestClient(create_app(make_settings(root))) as test_client:
        yield test_client
