"""Every 503 tells the client when to come back (``Retry-After``), not only a full backlog."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import make_settings

from f5serve.http.app import create_app


def test_a_model_that_cannot_be_downloaded_is_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # and the cache is empty: the model cannot load
    with TestClient(create_app(make_settings(tmp_path))) as client:
        body = {"text": "Hello there.", "voice": "narrator", "model": "f5tts-v1-base"}
        r = client.post("/v1/tts", json=body)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "model_unavailable"
        assert "f5tts-v1-base" in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) >= 1


def test_not_ready_is_503_with_retry_after(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert client.get("/ready").status_code == 200
        client.app.state.services.registry.manager.unload("tiny")  # type: ignore[attr-defined]
        r = client.get("/ready")
        assert r.status_code == 503 and r.json()["checks"]["model"] == "loading"
        assert int(r.headers["retry-after"]) >= 1
