"""Probes, metrics, docs, models, API keys, limits, overload and timeouts."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, make_settings, wav_bytes

from f5serve.core.settings import Settings
from f5serve.engine.audio import load_audio
from f5serve.http.app import create_app
from f5serve.http.auth import warn_if_open

TEXT = "Hello from the server."
AUTH = {"Authorization": "Bearer key-1"}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app with API keys and tight limits (model loaded on first use). Its 3 s reference
    limit keeps the 5 s ``narrator`` clip out of its library; ``brief`` (2.5 s) is in it."""
    root = tmp_path_factory.mktemp("strict")
    settings = make_settings(
        root,
        api_keys="key-1, key-2",
        max_upload_bytes=300_000,
        max_text_chars=100,
        max_reference_seconds=3.0,
        request_timeout=0.001,
        preload=False,
    )
    audio, sr = load_audio(REF_WAV.read_bytes())
    (root / "sample" / "brief.wav").write_bytes(wav_bytes(audio[: int(2.5 * sr)], sr))
    (root / "sample" / "brief.txt").write_text("Some call me nature, others")
    with TestClient(create_app(settings)) as client:
        assert {v["name"] for v in client.get("/v1/voices", headers=AUTH).json()["voices"]} == {
            "brief"
        }
        yield client


def test_health_ready_and_docs_are_served(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok", "model": "ok"}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/tts", "/v1/jobs", "/v1/voices", "/v1/audio/speech", "/v1/models"} <= set(paths)


def test_models_lists_the_catalogue_with_the_loaded_default(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    tiny = next(m for m in body["data"] if m["id"] == "tiny")
    assert tiny["default"] and tiny["loaded"] and tiny["languages"] == ["en", "zh"]
    assert tiny["device"] == "cpu" and tiny["bytes"] > 0  # what the manager measured
    services = client.app.state.services  # type: ignore[attr-defined]
    loaded = {m.name: m for m in services.registry.manager.loaded()}
    assert tiny["bytes"] == loaded["tiny"].bytes
    base = next(m for m in body["data"] if m["id"] == "f5tts-v1-base")
    assert not base["loaded"] and base["device"] is None and base["bytes"] is None


def test_metrics_count_requests_and_report_rtf_queue_and_models(client: TestClient) -> None:
    client.post("/v1/tts", json={"text": TEXT, "voice": "narrator"})
    text = client.get("/metrics").text
    assert 'f5serve_http_requests_total{method="POST",route="/v1/tts",status="200"}' in text
    assert "f5serve_synthesis_rtf_count" in text
    assert 'f5serve_queue_depth{queue="jobs"}' in text
    assert 'f5serve_model_loaded_bytes{device="cpu",model="tiny"}' in text
    assert "f5serve_models_loaded 1.0" in text


def test_api_keys_are_required_when_configured(strict: TestClient) -> None:
    assert strict.get("/v1/voices").status_code == 401
    wrong = strict.get("/v1/voices", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert strict.get("/v1/voices", headers={"Authorization": "Bearer key-2"}).status_code == 200
    assert strict.get("/metrics").status_code == 401
    assert strict.get("/health").status_code == 200  # probes stay open


def test_limits_are_configurable(strict: TestClient) -> None:
    long_text = strict.post("/v1/tts", json={"text": "x" * 101, "voice": "narrator"}, headers=AUTH)
    assert long_text.status_code == 413
    message = "text is 101 characters long (at most 100); use /v1/jobs for long texts"
    assert long_text.json()["error"]["message"] == message
    openai = {"model": "tts-1", "input": "x" * 101, "voice": "narrator"}
    long_input = strict.post("/v1/audio/speech", json=openai, headers=AUTH)
    assert long_input.status_code == 413 and long_input.json()["error"]["message"] == message
    big = strict.post(
        "/v1/voices",
        headers=AUTH,
        data={"name": "big", "ref_text": REF_TEXT},
        files={"audio": ("a.wav", b"RIFF" + bytes(400_000), "audio/wav")},
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    too_long = strict.post(
        "/v1/voices",
        headers=AUTH,
        data={"name": "long", "ref_text": REF_TEXT},
        files={"audio": ("a.wav", REF_WAV.read_bytes()[:200_000], "audio/wav")},
    )
    assert too_long.status_code == 413 and too_long.json()["error"]["details"]["max_seconds"] == 3


def test_oversized_bodies_are_refused_before_parsing(strict: TestClient) -> None:
    r = strict.post("/v1/tts", headers={**AUTH, "content-length": "999999999"}, content=b"{}")
    assert r.status_code == 413


def test_sync_requests_over_the_time_limit_get_504(strict: TestClient) -> None:
    r = strict.post("/v1/tts", json={"text": TEXT, "voice": "brief"}, headers=AUTH)
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_streamed_speech_over_the_time_limit_gets_504(
    strict: TestClient, stream_format: str
) -> None:
    body = {
        "model": "tts-1",
        "input": TEXT,
        "voice": "brief",
        "response_format": "pcm",
        "stream_format": stream_format,
    }
    r = strict.post("/v1/audio/speech", json=body, headers=AUTH)
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


def test_a_full_backlog_gives_503_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_queued_requests=0, preload=False)
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/tts", json={"text": TEXT, "voice": "narrator"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded"
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["details"]["retry_after"] >= 1


def test_open_api_on_a_public_address_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert warn_if_open("0.0.0.0", keys=False)
    assert "without API keys" in caplog.text
    assert not warn_if_open("127.0.0.1", keys=False)
    assert not warn_if_open("::1", keys=False)
    assert not warn_if_open("0.0.0.0", keys=True)


def test_settings_come_from_the_environment_and_a_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("F5SERVE_PORT", "9123")
    monkeypatch.setenv("F5SERVE_API_KEYS", "a,b")
    env_file = tmp_path / ".env"
    env_file.write_text("F5SERVE_JOB_TIMEOUT=42\nF5SERVE_VOICES_DIR=\n")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.port == 9123 and settings.api_key_set == {"a", "b"}
    assert settings.job_timeout == 42 and settings.voices_dir is None
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.request_timeout == 600 and defaults.max_text_chars == 4096
    assert defaults.default_model is None and defaults.host == "127.0.0.1"


def test_the_frame_budget_setting_reaches_the_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("F5SERVE_MAX_BATCH_FRAMES", "4096")
    fields = make_settings(tmp_path).model_dump(exclude={"max_batch_frames"})
    settings = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    assert settings.max_batch_frames == 4096
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.services.registry.engine("tiny")  # type: ignore[attr-defined]
        assert engine.max_batch_frames == 4096
        r = client.post("/v1/tts", json={"text": TEXT, "voice": "narrator"})
        assert r.status_code == 200
    default = make_settings(tmp_path, max_batch_frames=None)
    with TestClient(create_app(default)) as client:
        engine = client.app.state.services.registry.engine("tiny")  # type: ignore[attr-defined]
        assert engine.max_batch_frames == 1  # the CPU's default: one chunk per forward


def test_bugs_are_500_without_a_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("secret internal detail")

    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(services.voices, "all", broken)
    raw = TestClient(client.app, raise_server_exceptions=False)
    r = raw.get("/v1/voices")
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal_error", "message": "internal server error (see the server log)"}
    }


def test_page_and_docs_load_without_a_key_from_package_assets(strict: TestClient) -> None:
    page = strict.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in ("/docs", "/redoc"):
        html = strict.get(path).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
        assets = re.findall(r'(?:src|href)="(/web/[^"]+)"', html)
        assert len(assets) >= 2, html
        assert all(strict.get(asset).status_code == 200 for asset in assets)
    for asset in re.findall(r'(?:src|href)="(web/[^"]+)"', page.text):
        assert strict.get(f"/{asset}").status_code == 200
    assert strict.get("/web/app.js").headers["content-type"].startswith("text/javascript")
    assert strict.get("/web/missing.js").status_code == 404
    assert strict.get("/v1/models").status_code == 401  # the API behind the page still needs it
