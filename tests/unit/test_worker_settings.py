"""Storage settings of the service (S3 endpoint, credentials, URL lifetime), the RunPod
worker's settings and what it hands the SDK, and how the worker maps f5serve's errors to RunPod
error codes."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from f5serve.core.settings import Settings
from f5serve.core.storage.base import StorageError
from f5serve.errors import (
    AmbiguousVoice,
    DownloadError,
    F5ServeError,
    InvalidAudio,
    NotFound,
    PayloadTooLarge,
    Timeout,
)
from f5serve.runpod.inputs import error_output
from f5serve.runpod.settings import RunPodSettings


@pytest.fixture(autouse=True)
def no_f5serve_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("F5SERVE_"):
            monkeypatch.delenv(name)


def test_storage_url_is_read_from_either_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F5SERVE_STORAGE", "s3://from-short-name")
    assert Settings(_env_file=None).storage_url == "s3://from-short-name"  # type: ignore[call-arg]
    monkeypatch.setenv("F5SERVE_STORAGE_URL", "s3://from-long-name")
    assert Settings(_env_file=None).storage_url == "s3://from-long-name"  # type: ignore[call-arg]
    given = Settings(_env_file=None, storage_url="/data")  # type: ignore[call-arg]
    assert given.storage_url == "/data"


def test_storage_options_pass_only_what_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert plain.storage_options() == {"presign_expires": 3600}
    monkeypatch.setenv("F5SERVE_STORAGE_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("F5SERVE_STORAGE_REGION", "")
    monkeypatch.setenv("F5SERVE_STORAGE_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("F5SERVE_STORAGE_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("F5SERVE_STORAGE_URL_EXPIRES", "60")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.storage_options() == {
        "endpoint_url": "http://minio:9000",
        "access_key_id": "key",
        "secret_access_key": "s3cr3t",
        "presign_expires": 60,
    }
    assert "s3cr3t" not in repr(settings)


def test_runpod_concurrency_defaults_to_one_on_a_cpu() -> None:
    assert RunPodSettings(_env_file=None, device="cpu").concurrency() == 1  # type: ignore[call-arg]
    given = RunPodSettings(_env_file=None, device="cpu", runpod_concurrency=3)  # type: ignore[call-arg]
    assert given.concurrency() == 3


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidAudio("silent"), "invalid_input"),
        (PayloadTooLarge("long"), "invalid_input"),
        (NotFound("no voice", details={"voice": "x"}), "voice_not_found"),
        (NotFound("no file", details={"ref_name": "x"}), "voice_not_found"),
        (NotFound("no object"), "not_found"),
        (AmbiguousVoice("two keys", details={"voice": "x"}), "invalid_input"),
        (Timeout("slow"), "timeout"),
        (StorageError("down"), "storage_error"),
        (DownloadError("hub down"), "tts_failed"),
    ],
)
def test_errors_map_to_runpod_codes(error: F5ServeError, code: str) -> None:
    out = error_output(error)
    assert out["error"] == code and out["message"] == str(error)


def test_concurrency_modifier_given_to_the_sdk_returns_the_configured_concurrency(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runpod = pytest.importorskip("runpod")
    from f5serve.runpod import __main__ as entry

    started: list[dict[str, Any]] = []
    worker = SimpleNamespace(handle=object())
    monkeypatch.setattr(entry, "build_worker", lambda settings, send: worker)
    monkeypatch.setattr(runpod.serverless, "start", started.append)
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setenv("F5SERVE_DEVICE", "cpu")
    monkeypatch.setenv("F5SERVE_RUNPOD_CONCURRENCY", "3")
    entry.main()
    [config] = started
    assert config["handler"] is worker.handle
    modifier = config["concurrency_modifier"]
    assert [modifier(current) for current in (0, 1, 3, 8)] == [3, 3, 3, 3]
