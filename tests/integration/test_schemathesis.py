"""The API keeps to its own OpenAPI document: schemathesis generates requests for every
operation (valid and invalid, phases examples, coverage, fuzzing and stateful) against a real
``f5serve serve`` on loopback (tiny model, SQLite), open and with keys, and checks every answer
(``schemathesis.toml``): no server error but a documented 503 with ``Retry-After``, documented
statuses, content types, bodies and headers only.

The examples are few and the seed is fixed, so the run is short and repeatable; to search
further, run schemathesis by hand with more examples and other seeds (see schemathesis.toml).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_process import Server

pytest.importorskip("schemathesis")
pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
KEY = "schemathesis-key"
SEED = 20261130
# The server's own limits bound what one request may cost (see also fuzz_hooks.py): every
# synthesis request without a voice uses the library's narrator, so that generated options
# reach the engine rather than stopping at "no voice given".
DEPLOYMENT = {"default_voice": "narrator", "max_text_chars": 200, "max_job_text_chars": 200}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """An open server and one with a key, started together; offline: no model of the
    catalogue but the tiny one can load, and a request routed to another is a documented 503
    at once."""
    made = {
        keys or "open": Server(tmp_path_factory.mktemp("server"), api_keys=keys, **DEPLOYMENT)
        for keys in ("", KEY)
    }
    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(len(made)) as pool:
        patch.setenv("HF_HUB_OFFLINE", "1")
        list(pool.map(Server.start, made.values()))
    try:
        yield made
    finally:
        for server in made.values():
            server.kill()


def run_schemathesis(server: Server, examples: int, *args: str) -> None:
    """One schemathesis run against ``server``; fails with its report."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        "--max-examples",
        str(examples),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "60",
        *args,
    ]
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "PYTHONPATH": path, "NO_COLOR": "1"}
    result = subprocess.run(
        command, env=env, cwd=server.root, capture_output=True, text=True, timeout=600
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-30_000:]
    assert "Test cases:" in report  # it ran


def synthesized(server: Server, headers: dict[str, str]) -> float:
    """How many POST /v1/tts the server answered with audio (from its metrics)."""
    metrics = httpx.get(f"{server.url}/metrics", headers=headers, timeout=60).text
    families = text_string_to_metric_families(metrics)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "f5serve_http_requests_total"
        and sample.labels == {"method": "POST", "route": "/v1/tts", "status": "200"}
    )


def test_an_open_server_keeps_to_its_document(servers: dict[str, Server]) -> None:
    # an open server takes requests without a key: the document's bearer scheme is for servers
    # with keys
    run_schemathesis(servers["open"], 15, "--exclude-checks", "ignored_auth")
    assert synthesized(servers["open"], {}) > 0  # generated requests reached the engine


def test_a_server_with_keys_keeps_to_its_document(servers: dict[str, Server]) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    run_schemathesis(servers[KEY], 15, "--header", f"Authorization: {headers['Authorization']}")
    assert synthesized(servers[KEY], headers) > 0


def test_without_a_key_every_answer_is_documented(servers: dict[str, Server]) -> None:
    """No key: the protected operations answer 401, which they must document (a malformed body
    may be refused first, with its own documented status)."""
    run_schemathesis(servers[KEY], 6)
