"""``f5serve synth`` with the words: --script with --voice, --pronounce, --subtitles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import srt

sys.path.insert(0, str(Path(__file__).parent))

from test_cli import REF_TEXT, model_args, run_cli


def test_a_script_with_voices_pronunciations_and_subtitles(
    tmp_path: Path, fixtures_dir: Path, golden_dir: Path, tiny_model_files: dict[str, Any]
) -> None:
    ref = fixtures_dir / "basic_ref_en.wav"
    out, subtitles = tmp_path / "talk.wav", tmp_path / "talk.srt"
    proc = run_cli(
        "synth",
        "nginx has 2 cats. [alice] I have 3.",
        "--script",
        "--ref-audio",
        str(ref),
        "--ref-text",
        REF_TEXT,
        "--voice",
        f"alice={ref}:{REF_TEXT}",
        "--pronounce",
        "nginx=engine x",
        "--subtitles",
        str(subtitles),
        "-o",
        str(out),
        "--nfe-steps",
        "2",
        *model_args(tiny_model_files, golden_dir),
    )
    assert proc.returncode == 0, proc.stderr
    cues = list(srt.parse(subtitles.read_text()))
    assert [c.content for c in cues] == ["engine x has two cats.", "I have three."]
    assert cues[0].end < cues[1].start  # the pause between speakers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--voice", "alice=a.wav:Hi."], "error: --voice names the speakers of a --script"),
        (["--script", "--voice", "alice=a.wav"], "error: --voice 'alice=a.wav': write NAME="),
        (["--script"], "error: the script names voices that were not given: bob"),
        (["--subtitles", "out.txt"], "error: subtitles go in a .srt or .vtt file"),
        (["--pronounce", "nginx"], "error: --pronounce 'nginx': write WORD=SPELLING"),
    ],
)
def test_bad_word_options_print_one_line(
    tmp_path: Path,
    fixtures_dir: Path,
    golden_dir: Path,
    tiny_model_files: dict[str, Any],
    args: list[str],
    message: str,
) -> None:
    proc = run_cli(
        "synth",
        "Hello. [bob] Hi.",
        "--ref-audio",
        str(fixtures_dir / "basic_ref_en.wav"),
        "--ref-text",
        REF_TEXT,
        "-o",
        str(tmp_path / "out.wav"),
        *args,
        *model_args(tiny_model_files, golden_dir),
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
