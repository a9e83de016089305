"""The API replica's forwarding, against fake workers (``tests/integration/test_scale_out.py``
runs real ones): the least loaded live worker of the request's model answers, a refused
connection moves on to the next worker, and with none left the answer is 503 + Retry-After."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from f5serve.core.db import WorkerRow, open_database, utcnow
from f5serve.core.metrics import Metrics
from f5serve.core.workers import Announcement, WorkerDirectory
from f5serve.http.forward import ForwardMiddleware, Relay
from f5serve.registry import load_catalog
from f5serve.registry.language import LanguageRouter

TOML = """
[[models]]
name = "english"
languages = ["en"]
checkpoint = "hf://test/en/model.safetensors"
vocab = "hf://test/en/vocab.txt"
arch = "tiny_v1"
vocoder = "hf://test/vocos"
default = true

[[models]]
name = "french"
languages = ["fr"]
checkpoint = "hf://test/fr/model.safetensors"
vocab = "hf://test/en/vocab.txt"
arch = "tiny_v1"
vocoder = "hf://test/vocos"
"""


@pytest.fixture
def directory(tmp_path: Path) -> WorkerDirectory:
    return WorkerDirectory(open_database(f"sqlite:///{tmp_path / 'db.sqlite'}"), stale_after=30)


def announce(directory: WorkerDirectory, name: str, models: list[str], load: int) -> None:
    directory.announce(Announcement(name, f"http://{name}", models, capacity=4), load)


def test_live_workers_of_a_model_come_least_loaded_first(directory: WorkerDirectory) -> None:
    announce(directory, "busy", [], 3)  # serves every model
    announce(directory, "idle", ["english"], 0)
    announce(directory, "french-only", ["french"], 0)
    announce(directory, "dead", ["english"], 0)
    with directory.sessions() as session:  # its last heartbeat is older than stale_after
        row = session.get(WorkerRow, "dead")
        assert row is not None
        row.heartbeat_at = utcnow() - timedelta(seconds=60)
        session.commit()
    assert [w.id for w in directory.live("english")] == ["idle", "busy"]
    assert [w.id for w in directory.live("french")] == ["french-only", "busy"]
    directory.remove("idle")
    assert [w.id for w in directory.live("english")] == ["busy"]


def streamed(data: bytes) -> httpx2.Response:
    """A worker's answer as it comes over the network: a stream, not yet read."""

    async def body() -> AsyncIterator[bytes]:
        yield data

    return httpx2.Response(200, content=body())


def make_replica(
    tmp_path: Path, directory: WorkerDirectory, answer: Any
) -> tuple[TestClient, list[str]]:
    """An app whose sync routes are forwarded; ``answer(request)`` plays the workers; the URLs
    asked, in order."""
    (tmp_path / "models.toml").write_text(TOML)
    catalog = load_catalog(tmp_path / "models.toml", {})
    registry = SimpleNamespace(
        route=LanguageRouter(catalog).route,
        specs=lambda: list(catalog.models),
        default_model=catalog.default_name,
    )
    settings = SimpleNamespace(request_timeout=10.0)
    services: Any = SimpleNamespace(
        workers=directory, registry=registry, settings=settings, metrics=Metrics()
    )
    relay = Relay(services, body_limit=10_000)
    asked: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        asked.append(f"{request.url.host}{request.url.path}")
        response: httpx2.Response = answer(request)
        return response

    relay.client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    app = FastAPI()
    app.add_middleware(ForwardMiddleware, relay=relay)
    return TestClient(app), asked


def test_a_refused_connection_moves_on_to_the_next_worker(
    tmp_path: Path, directory: WorkerDirectory
) -> None:
    announce(directory, "gone", ["english"], 0)  # least loaded, but its process has died
    announce(directory, "alive", ["english"], 1)
    announce(directory, "french", ["french"], 0)

    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "gone":
            raise httpx2.ConnectError("connection refused")
        body = json.loads(request.content)
        assert request.headers["authorization"] == "Bearer key"  # the worker checks it
        return streamed(b"RIFF" + (body.get("text") or body["input"]).encode())

    client, asked = make_replica(tmp_path, directory, answer)
    body = {"text": "Hello there.", "voice": "narrator", "model": "english"}
    r = client.post("/v1/tts", json=body, headers={"Authorization": "Bearer key"})
    assert r.status_code == 200 and r.content == b"RIFFHello there."
    assert asked == ["gone/v1/tts", "alive/v1/tts"]
    # the OpenAI route, a French request: to the French worker
    asked.clear()
    speech = {"model": "french", "input": "Bonjour."}
    r = client.post("/v1/audio/speech", json=speech, headers={"Authorization": "Bearer key"})
    assert r.status_code == 200 and asked == ["french/v1/audio/speech"]


def test_no_worker_that_can_take_it_is_503_with_retry_after(
    tmp_path: Path, directory: WorkerDirectory
) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused")

    client, asked = make_replica(tmp_path, directory, refuse)
    r = client.post("/v1/tts", json={"text": "Hello.", "model": "french"})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert (
        r.json()["error"]["code"] == "overloaded"
        and "no live worker" in r.json()["error"]["message"]
    )
    announce(directory, "refusing", ["french"], 0)
    r = client.post("/v1/tts", json={"text": "Hello.", "model": "french"})
    assert r.status_code == 503 and "no worker could take" in r.json()["error"]["message"]
    assert asked == ["refusing/v1/tts"]
    too_big = client.post(
        "/v1/tts", content=b"x" * 20_000, headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 413
