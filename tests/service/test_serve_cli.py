"""``f5serve serve``: one flag per setting, listed by ``--help``; flags win over the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from f5serve import cli
from f5serve.core.settings import Settings


def test_serve_help_lists_every_setting() -> None:
    result = CliRunner().invoke(cli.app, ["serve", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in result.output, name
    assert "F5SERVE_API_KEYS" in result.output


def test_serve_flags_override_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setenv("F5SERVE_PORT", "7000")
    monkeypatch.setenv("F5SERVE_JOB_WORKERS", "5")
    monkeypatch.setattr("f5serve.http.app.create_app", lambda s: seen.setdefault("s", s))
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(kw))
    args = ["serve", "--port", "7100", "--no-preload", "--env-file", str(tmp_path / "x.env")]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    settings: Settings = seen["s"]
    assert seen["port"] == 7100 and settings.port == 7100 and settings.preload is False
    assert settings.job_workers == 5


def test_a_default_model_that_cannot_load_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("F5SERVE_", "HF_"))}
    env |= {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "F5SERVE_VOICES_DIR": ""}
    env["F5SERVE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env["F5SERVE_STORAGE_URL"] = str(tmp_path / "storage")
    done = subprocess.run(
        [sys.executable, "-m", "f5serve", "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model 'f5tts-v1-base' is not available"), last


def test_worker_maps_its_flags_to_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("f5serve.http.app.create_app", lambda s: seen.setdefault("s", s))
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(kw))
    args = [
        "worker",
        "--models",
        "fr-model,de-model",
        "--concurrency",
        "6",
        "--no-preload",
        "--database-url",
        "postgresql://u@db/f5serve",
        "--advertise-url",
        "http://gpu-1:8001/",
        "--env-file",
        str(tmp_path / "x.env"),
    ]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    settings: Settings = seen["s"]
    assert settings.worker_model_list == ["fr-model", "de-model"] and settings.job_workers == 6
    assert settings.run_worker is True and settings.worker_url() == "http://gpu-1:8001"


def test_a_worker_on_sqlite_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("F5SERVE_")}
    env["F5SERVE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = subprocess.run(
        [sys.executable, "-m", "f5serve", "worker", "--models", "tiny"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: f5serve worker shares jobs through PostgreSQL")
