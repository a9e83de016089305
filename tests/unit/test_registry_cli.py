"""``f5serve models ...`` and ``f5serve synth --model/--language`` without any network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from f5serve.cli import app, main
from f5serve.registry import load_catalog

REF_TEXT = "Some call me nature, others call me mother nature."


def local_models_file(tmp_path: Path, golden_dir: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(
        f"""
[[models]]
name = "tiny-local"
languages = ["en"]
checkpoint = "{golden_dir / "dit_v1.safetensors"}"
vocab = "{golden_dir / "vocab.txt"}"
arch = "tiny_v1"
vocoder = "{golden_dir / "vocos"}"
licence = "test-only"
"""
    )
    return path


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f5serve", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
    )


def invoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """Run ``main()`` (the real entry point with its error wrapper) in this process, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sys, "argv", ["f5serve", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    return int(caught.value.code or 0), capsys.readouterr().err


def test_models_list_shows_every_model_languages_licence_and_cache_state(
    tmp_path: Path, golden_dir: Path
) -> None:
    models = local_models_file(tmp_path, golden_dir)
    result = CliRunner().invoke(
        app, ["models", "list", "--models-file", str(models), "--cache-dir", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert len(rows) == 14
    cells = [c.strip() for c in rows["f5tts-v1-base (default)"].split("│")[1:-1]]
    assert cells[:7] == [
        "f5tts-v1-base (default)",
        "zh,en",
        "F5TTS_v1_Base",
        "?",
        "no",
        "no",
        "cc-by-nc-4.0",
    ]
    assert "cc0-1.0" in rows["f5tts-lv"] and "cc-by-4.0" in rows["f5tts-hi"]
    assert "cc-by-nc-sa-4.0" in rows["f5tts-vi"] and "cc-by-nc-sa-4.0" in rows["f5tts-vi-100h"]
    local = [c.strip() for c in rows["tiny-local"].split("│")[1:-1]]
    assert local[3].endswith("MB") and local[4] == "yes"  # local files count as cached
    assert "the command line loads none" in result.output


def test_models_rm_of_a_model_that_is_not_cached_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["models", "rm", "f5tts-de", "--cache-dir", str(tmp_path / "empty")]
    )
    assert result.exit_code == 0
    assert "f5tts-de has nothing in the cache" in result.output


def test_pull_offline_and_unknown_names_fail_with_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stderr = invoke(
        monkeypatch, capsys, "models", "pull", "f5tts-fr", "--cache-dir", str(tmp_path)
    )
    assert code == 1
    assert stderr.strip().splitlines() == [
        f"error: model 'f5tts-fr' is not available offline: "
        f"hf://RASPIAUDIO/F5-French-MixedSpeakers-reduced/model_last_reduced.pt is not in the "
        f"cache {tmp_path} and HF_HUB_OFFLINE is set; fetch it with "
        "`f5serve models pull f5tts-fr` while online"
    ]
    args = ("models", "pull", "f5tts-fr", "nope", "--cache-dir", str(tmp_path))
    code, stderr = invoke(monkeypatch, capsys, *args)
    assert code == 1
    assert stderr.strip().splitlines() == [
        "error: unknown model 'nope'; known models: " + ", ".join(load_catalog(None, {}).names())
    ]


def test_synth_by_model_name_uses_the_registry(
    tmp_path: Path, golden_dir: Path, fixtures_dir: Path
) -> None:
    out = tmp_path / "out.wav"
    common = ["--ref-audio", str(fixtures_dir / "basic_ref_en.wav"), "--ref-text", REF_TEXT]
    models = str(local_models_file(tmp_path, golden_dir))
    proc = run_cli(
        "synth", "Hello.", *common, "-o", str(out), "--nfe-steps", "2",
        "--model", "tiny-local", "--models-file", models, "--cache-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "model tiny-local" in proc.stderr and out.stat().st_size > 1000


def test_synth_registry_errors_are_one_line(
    tmp_path: Path,
    fixtures_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["--ref-audio", str(fixtures_dir / "basic_ref_en.wav"), "--ref-text", REF_TEXT]
    out = ["-o", str(tmp_path / "o.wav"), "--cache-dir", str(tmp_path)]
    cases = [
        (["--language", "sw"], "error: no model speaks 'sw'; languages served: de, en, es,"),
        (["--model", "nope"], "error: unknown model 'nope'"),
        (["--vocab", "v.txt"], "error: --vocab, --arch and --vocoder go with --checkpoint"),
        (["--language", "de"], "error: model 'f5tts-de' is not available offline"),
    ]
    for extra, message in cases:
        code, stderr = invoke(monkeypatch, capsys, "synth", "Guten Tag.", *common, *out, *extra)
        assert code == 1
        assert stderr.strip().splitlines()[-1].startswith(message), stderr
        assert "Traceback" not in stderr
