"""The loaded-model limits of the service: memory budget, model count, idle unloading."""

from __future__ import annotations

import gc
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import MODELS_TOML, make_settings
from pydantic import ValidationError

from f5serve.core.services import Services
from f5serve.core.settings import Settings, parse_memory_budget
from f5serve.http.app import create_app

# A second catalogue entry on the same tiny files: a model that is not the (pinned) default.
SECOND_MODEL = MODELS_TOML.split("[[models]]", 1)[1].replace('name = "tiny"', 'name = "tiny-b"')
TWO_MODELS_TOML = MODELS_TOML + "\n[[models]]" + SECOND_MODEL.replace("default = true\n", "")


def services_of(client: TestClient) -> Services:
    return client.app.state.services  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20GB", 20 * 10**9),
        ("20 gb", 20 * 10**9),
        ("8GiB", 8 * 2**30),
        ("512M", 512 * 10**6),
        ("1.5GB", 1_500_000_000),
        ("123456", 123456),
        ("cuda:0=20GB, cpu=8GiB", {"cuda:0": 20 * 10**9, "cpu": 8 * 2**30}),
        ("cuda=1GB,cuda:1=2GB", {"cuda:0": 10**9, "cuda:1": 2 * 10**9}),
    ],
)
def test_memory_budgets_are_sizes_or_per_device_sizes(
    text: str, expected: int | dict[str, int]
) -> None:
    assert parse_memory_budget(text) == expected


@pytest.mark.parametrize("text", ["lots", "20XB", "0", "GB", "gpu=1GB", "cuda:0=", "1i"])
def test_a_bad_memory_budget_stops_start_up(text: str) -> None:
    with pytest.raises(ValidationError, match="model_memory_budget"):
        Settings(_env_file=None, model_memory_budget=text)  # type: ignore[call-arg]


def test_model_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F5SERVE_MODEL_MEMORY_BUDGET", "cuda:0=20GB,cpu=8GB")
    monkeypatch.setenv("F5SERVE_MAX_LOADED_MODELS", "3")
    monkeypatch.setenv("F5SERVE_MODEL_IDLE_SECONDS", "900")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.memory_budget() == {"cuda:0": 20 * 10**9, "cpu": 8 * 10**9}
    assert settings.max_loaded_models == 3 and settings.model_idle_seconds == 900
    monkeypatch.setenv("F5SERVE_MODEL_MEMORY_BUDGET", "")
    monkeypatch.setenv("F5SERVE_MAX_LOADED_MODELS", "")
    monkeypatch.setenv("F5SERVE_MODEL_IDLE_SECONDS", "")
    unset = Settings(_env_file=None)  # type: ignore[call-arg]
    assert unset.memory_budget() is None
    assert unset.max_loaded_models is None and unset.model_idle_seconds is None
    with pytest.raises(ValidationError):
        Settings(_env_file=None, max_loaded_models=0)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, model_idle_seconds=0)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("limits", "budget", "reaping"),
    [
        ({"model_memory_budget": "cpu=1GB", "max_loaded_models": 3, "model_idle_seconds": 60}, {"cpu": 10**9}, True),  # noqa: E501
        ({"model_memory_budget": 2_000_000_000}, 2_000_000_000, False),
        ({}, None, False),
    ],
)  # fmt: skip
def test_the_limits_reach_the_model_manager(
    tmp_path: Path, limits: dict[str, Any], budget: object, reaping: bool
) -> None:
    settings = make_settings(tmp_path, preload=False, **limits)
    with TestClient(create_app(settings)) as client:
        manager = services_of(client).registry.manager
        assert manager.memory_budget == budget
        assert manager.max_models == limits.get("max_loaded_models")
        assert manager.idle_seconds == limits.get("model_idle_seconds")
        assert manager.reaping is reaping  # the reaper runs only with idle unloading
    assert not manager.reaping  # the app's shutdown stopped it


def test_an_idle_model_is_unloaded_by_the_reaper_and_the_default_stays(tmp_path: Path) -> None:
    (tmp_path / "two.toml").write_text(TWO_MODELS_TOML)
    settings = make_settings(tmp_path, models_file=tmp_path / "two.toml", model_idle_seconds=0.2)
    body = {"text": "Hi there.", "voice": "narrator", "model": "tiny-b", "response_format": "json"}
    with TestClient(create_app(settings)) as client:
        manager = services_of(client).registry.manager
        unloaded: list[tuple[str, weakref.ref[Any]]] = []
        manager.on_unload(lambda name, engine: unloaded.append((name, weakref.ref(engine))))
        r = client.post("/v1/tts", json=body)
        assert r.status_code == 200 and r.json()["model"] == "tiny-b"

        deadline = time.monotonic() + 60
        while not unloaded:
            assert time.monotonic() < deadline, "the idle model was never unloaded"
            time.sleep(0.05)
        assert [name for name, _ in unloaded] == ["tiny-b"]
        cards = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
        assert not cards["tiny-b"]["loaded"] and cards["tiny-b"]["bytes"] is None
        assert cards["tiny"]["loaded"] and cards["tiny"]["bytes"] > 0  # pinned: never idle
        engine = unloaded[0][1]
        while engine() is not None:  # nothing keeps it (its scheduler was dropped too)
            assert time.monotonic() < deadline, "something still holds the unloaded engine"
            gc.collect()
            time.sleep(0.05)

        again = client.post("/v1/tts", json=body)  # it comes back on the next request
        assert again.status_code == 200 and again.json()["model"] == "tiny-b"
