"""The ``f5serve synth`` command, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from f5serve.engine.audio import load_audio

REF_TEXT = "Some call me nature, others call me mother nature."


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f5serve", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )


def model_args(files: dict[str, Any], golden_dir: Path) -> list[str]:
    return [
        "--checkpoint",
        str(files["checkpoint"]),
        "--vocab",
        str(files["vocab"]),
        "--arch",
        str(golden_dir / "dit_v1.json"),
        "--vocoder",
        str(files["vocoder"]),
    ]


@pytest.mark.parametrize("ext", ["wav", "mp3", "flac"])
def test_synth_writes_audio_in_the_format_of_the_extension(
    tmp_path: Path,
    fixtures_dir: Path,
    golden_dir: Path,
    tiny_model_files: dict[str, Any],
    ext: str,
) -> None:
    out = tmp_path / f"hello.{ext}"
    proc = run_cli(
        "synth",
        "Hello from the command line.",
        "--ref-audio",
        str(fixtures_dir / "basic_ref_en.wav"),
        "--ref-text",
        REF_TEXT,
        "-o",
        str(out),
        "--nfe-steps",
        "4",
        "--seed",
        "3",
        *model_args(tiny_model_files, golden_dir),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stderr
    audio, sr = load_audio(out)
    assert sr == 24000
    assert len(audio) > 0.3 * sr
    assert float(np.sqrt(np.mean(audio**2))) > 1e-3


def test_synth_reads_text_from_stdin(
    tmp_path: Path, fixtures_dir: Path, golden_dir: Path, tiny_model_files: dict[str, Any]
) -> None:
    out = tmp_path / "stdin.wav"
    proc = run_cli(
        "synth",
        "-",
        "--ref-audio",
        str(fixtures_dir / "basic_ref_en.wav"),
        "--ref-text",
        REF_TEXT,
        "-o",
        str(out),
        "--nfe-steps",
        "2",
        *model_args(tiny_model_files, golden_dir),
        stdin="Text from a pipe.",
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 1000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"text": "?!"}, "error: text to synthesise is only punctuation"),
        ({"--ref-audio": "missing.wav"}, "error: audio file not found"),
        ({"--checkpoint": "nope.safetensors"}, "error: checkpoint file not found"),
        ({"--arch": "F5TTS_v9"}, "error: unknown architecture preset 'F5TTS_v9'"),
        ({"-o": "out.xyz"}, "error: cannot tell the audio format of out.xyz"),
        ({"--device": "cuda:7"}, "error: device cuda:7 is not available"),
    ],
)
def test_bad_input_prints_one_line_and_exits_non_zero(
    tmp_path: Path,
    fixtures_dir: Path,
    golden_dir: Path,
    tiny_model_files: dict[str, Any],
    change: dict[str, str],
    message: str,
) -> None:
    options = {
        "--ref-audio": str(fixtures_dir / "basic_ref_en.wav"),
        "--ref-text": REF_TEXT,
        "-o": str(tmp_path / "out.wav"),
        **dict(
            zip(
                model_args(tiny_model_files, golden_dir)[::2],
                model_args(tiny_model_files, golden_dir)[1::2],
                strict=True,
            )
        ),
        "--nfe-steps": "2",
    }
    text = change.pop("text", "Hello.")
    options.update(change)
    args = [item for pair in options.items() for item in pair]
    proc = run_cli("synth", text, *args)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(message), lines[0]
    assert "Traceback" not in proc.stderr


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("f5serve ")
    help_text = run_cli("synth", "--help").stdout
    for option in ("--ref-audio", "--nfe-steps", "--checkpoint", "--fix-duration"):
        assert option in help_text
