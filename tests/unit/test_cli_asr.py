"""``f5serve synth`` with speech recognition: a --ref-audio without --ref-text, --quality-check
(the real backend on a tiny random Whisper), and the one-line error without the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tiny_whisper import build_tiny_whisper

sys.path.insert(0, str(Path(__file__).parent))

from test_cli import model_args, run_cli


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"))


def test_a_clip_without_transcript_is_heard_and_each_try_reported(
    tmp_path: Path,
    fixtures_dir: Path,
    golden_dir: Path,
    tiny_model_files: dict[str, Any],
    tiny_whisper: Path,
) -> None:
    out = tmp_path / "out.wav"
    proc = run_cli(
        "synth",
        "Hello there.",
        "--ref-audio",
        str(fixtures_dir / "basic_ref_en.wav"),
        "--asr-model",
        str(tiny_whisper),
        "--quality-check",
        "--max-tries",
        "2",
        "--cer-threshold",
        "0",
        "--seed",
        "3",
        "--nfe-steps",
        "2",
        "--device",
        "cpu",
        "-o",
        str(out),
        *model_args(tiny_model_files, golden_dir),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 1000
    # random weights never hear the text exactly: both tries, with the next seed
    assert "quality check, chunk 1: seed 3: cer " in proc.stderr
    assert ", seed 4: cer " in proc.stderr


def test_without_the_extra_a_missing_transcript_is_one_line(
    tmp_path: Path, fixtures_dir: Path, golden_dir: Path, tiny_model_files: dict[str, Any]
) -> None:
    args = [
        "synth",
        "Hello.",
        "--ref-audio",
        str(fixtures_dir / "basic_ref_en.wav"),
        "-o",
        str(tmp_path / "out.wav"),
        *model_args(tiny_model_files, golden_dir),
    ]
    without_extra = (
        "import sys; sys.modules['transformers'] = None; "  # the import fails
        "from f5serve.cli import main; sys.argv = ['f5serve', *sys.argv[1:]]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", without_extra, *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: --ref-text (the transcript of --ref-audio) is required"), line
    assert "pip install 'f5serve[asr]'" in line
