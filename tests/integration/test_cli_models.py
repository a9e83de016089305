"""``f5serve models pull/list/rm`` and ``synth --language`` as a user runs them, with
``HF_ENDPOINT`` pointing at the fake Hub (the same path a mirror or a private hub takes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_hub import FakeHub

REF_TEXT = "Some call me nature, others call me mother nature."


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "F5SERVE_"))}
    return subprocess.run(
        [sys.executable, "-m", "f5serve", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "HF_HUB_DISABLE_PROGRESS_BARS": "1", **env},
    )


def test_pull_list_synth_offline_rm_through_hf_endpoint(
    hub: FakeHub, models_file: Path, cache_dir: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    online = {"HF_ENDPOINT": hub.url, "F5SERVE_MODELS_FILE": str(models_file)}
    offline = {"HF_HUB_OFFLINE": "1", "F5SERVE_MODELS_FILE": str(models_file)}
    where = ["--cache-dir", str(cache_dir)]

    pulled = run_cli("models", "pull", "tiny-en", *where, env=online)
    assert pulled.returncode == 0, pulled.stderr
    assert "pulled tiny-en (1.5 MB)" in pulled.stderr
    assert len(hub.gets("dit_v1.safetensors")) == 1

    listed = run_cli("models", "list", *where, env=offline)
    row = next(line for line in listed.stdout.splitlines() if "tiny-en" in line)
    assert [c.strip() for c in row.split("│")[1:6]] == [
        "tiny-en (default)", "en", "tiny_v1", "1.5 MB", "yes",
    ]  # fmt: skip

    hub.stop()  # from here on nothing can be downloaded
    out = tmp_path / "hello.wav"
    synth = [
        "synth", "Hello from the registry.", "--language", "en", "--nfe-steps", "2",
        "--ref-audio", str(fixtures_dir / "basic_ref_en.wav"), "--ref-text", REF_TEXT,
        "-o", str(out), *where,
    ]  # fmt: skip
    spoken = run_cli(*synth, env=offline)
    assert spoken.returncode == 0, spoken.stderr
    assert "model tiny-en" in spoken.stderr and out.stat().st_size > 1000

    removed = run_cli("models", "rm", "tiny-en", *where, env=offline)
    assert removed.returncode == 0 and "removed tiny-en (1.5 MB freed)" in removed.stderr

    again = run_cli(*synth, env=offline)
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: model 'tiny-en' is not available offline: hf://test/tiny-f5/dit_v1.safetensors"
        )
    )
    assert "`f5serve models pull tiny-en`" in again.stderr
