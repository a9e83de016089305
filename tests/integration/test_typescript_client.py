"""The TypeScript client (``clients/typescript``) and its ``node --test`` suite against real
servers: ``f5serve serve`` and the RunPod worker's local API (``--rp_serve_api``), both on the
tiny model. The suite runs plain JavaScript, so it needs node but no npm packages; when the
client's ``node_modules`` is installed (``scripts/setup.sh``), tsc type-checks it first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import Server, free_port
from test_runpod import wait_until_up, worker_env

pytestmark = pytest.mark.slow
CLIENT = Path(__file__).parents[2] / "clients" / "typescript"
NODE = shutil.which("node")
if NODE is None:
    pytest.skip(
        "node is not installed: the TypeScript client is not tested", allow_module_level=True
    )


@pytest.fixture(scope="module")
def runpod_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m f5serve.runpod --rp_serve_api`` on loopback, results in local storage."""
    root = tmp_path_factory.mktemp("runpod-api")
    port = free_port()
    command = [sys.executable, "-m", "f5serve.runpod", "--rp_serve_api"]
    command += ["--rp_api_port", str(port), "--rp_api_host", "127.0.0.1"]
    with (root / "worker.log").open("wb") as log:
        process = subprocess.Popen(command, env=worker_env(root), cwd=root, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, url, root / "worker.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = Server(tmp_path_factory.mktemp("ts-server")).start()
    try:
        yield server.url
    finally:
        server.kill()


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=CLIENT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_client_type_checks() -> None:
    if not (CLIENT / "node_modules" / ".bin" / "tsc").exists():
        pytest.skip("clients/typescript/node_modules is missing: run scripts/setup.sh")
    done = run([str(CLIENT / "node_modules" / ".bin" / "tsc"), "--noEmit", "-p", "."])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_node_suite_passes_against_real_servers(server_url: str, runpod_url: str) -> None:
    env = {**os.environ, "F5SERVE_URL": server_url, "F5SERVE_RUNPOD_URL": runpod_url}
    done = run([str(NODE), "--test", "test/"], env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "# fail 0" in output and "# pass 5" in output, output
