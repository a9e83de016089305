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


@pytest.mark.parametrize("flag", ["--no-worker", "--no-run-worker"])
def test_no_worker_makes_an_api_replica(
    flag: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--no-worker`` (the setting's own name, ``--no-run-worker``, is an alias) sets
    ``run_worker``; ``f5serve worker`` always runs jobs and has no such flag."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr("f5serve.http.app.create_app", lambda s: seen.setdefault("s", s))
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: None)
    args = ["serve", flag, "--no-preload", "--env-file", str(tmp_path / "x.env")]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert seen["s"].run_worker is False
    worker = CliRunner().invoke(cli.app, ["worker", flag])
    assert worker.exit_code == 2 and f"No such option: {flag}" in worker.output


def serve_offline(
    tmp_path: Path, database_url: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``f5serve serve`` in a subprocess, offline, with its own database and storage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("F5SERVE_", "HF_"))}
    env |= {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "F5SERVE_VOICES_DIR": ""}
    env["F5SERVE_DATABASE_URL"] = database_url
    env["F5SERVE_STORAGE_URL"] = str(tmp_path / "storage")
    return subprocess.run(
        [sys.executable, "-m", "f5serve", "serve", "--port", "1", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_error_line(done: subprocess.CompletedProcess[str], start: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(start), last


def test_a_default_model_that_cannot_load_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = serve_offline(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert_one_error_line(done, "error: model 'f5tts-v1-base' is not available")


def test_a_read_only_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """The schema is current, so the first write (at start-up) is what fails."""
    db = tmp_path / "db.sqlite"
    cli.db_upgrade(database_url=f"sqlite:///{db}", env_file=tmp_path / "none.env")
    done = serve_offline(tmp_path, f"sqlite:///file:{db}?mode=ro&uri=true", "--no-preload")
    assert_one_error_line(done, "error: the database is unavailable: attempt to write a readonly")
