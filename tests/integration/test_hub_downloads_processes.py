"""Two processes pulling one model into one cache download every file once (the file lock)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fake_hub import FakeHub

# Import first (seconds), say "ready", wait for "go" on stdin, then fetch: the parent releases
# both at once so that they really ask together. INFO logging shows who waited for the lock.
PULL = """
import logging, sys
from f5serve.registry import ModelStore, load_catalog

logging.basicConfig(level=logging.INFO, format="%(message)s")
models_file, cache_dir, endpoint = sys.argv[1:4]
spec = load_catalog(models_file, {}).get("tiny-en")
store = ModelStore(cache_dir, endpoint=endpoint, offline=False, progress="none", environ={})
print("ready", flush=True)
sys.stdin.readline()
print(store.fetch(spec).checkpoint, flush=True)
"""


def file_gets(hub: FakeHub) -> Counter[str]:
    return Counter(r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path)


def test_two_processes_pulling_at_once_download_each_file_once(
    hub: FakeHub, models_file: Path, cache_dir: Path
) -> None:
    hub.delay = 0.3  # each file body: the first process holds the lock for over a second
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "F5SERVE_"))}
    args = [sys.executable, "-c", PULL, str(models_file), str(cache_dir), hub.url]
    procs = [
        subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stderr is not None
            if proc.stdout.readline() != "ready\n":  # it died starting up: show why
                proc.wait(timeout=60)
                pytest.fail(proc.stderr.read())
        for proc in procs:  # go, both at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    checkpoints = {out.strip() for out, _ in outputs}
    assert len(checkpoints) == 1 and Path(checkpoints.pop()).is_file()
    waited = ["waiting for another process" in err for _, err in outputs]
    assert sorted(waited) == [False, True], "the two fetches did not overlap"
    assert set(file_gets(hub).values()) == {1}
    assert len(file_gets(hub)) == 4
