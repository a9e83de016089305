"""A real uvicorn server: the body limit is counted as the bytes arrive (chunked bodies that
declare no length), a client that hangs up cancels its synthesis, and a 500 closes its
keep-alive connection in the open."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from helpers import live_server, make_settings, wait_until
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from f5serve.core import listing
from f5serve.engine.scheduler import Scheduler
from f5serve.http.app import body_limit, create_app

CHUNK = 64 * 1024
SENT = 8 * 1024 * 1024  # eight times the limit of these tests


class BytesSeen:
    """Innermost middleware (a test seam): how many body bytes reached the routes."""

    def __init__(self, app: ASGIApp, seen: list[int]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            self.seen.append(len(message.get("body", b"")))
            return message

        await self.app(scope, counted, send)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    settings = make_settings(tmp_path_factory.mktemp("live"), max_upload_bytes=600_000)
    return create_app(settings)


@pytest.fixture(scope="module")
def server(app: FastAPI) -> Iterator[tuple[str, int, list[int]]]:
    seen: list[int] = []
    app.user_middleware.append(Middleware(BytesSeen, seen=seen))
    with live_server(app) as url:
        yield url, body_limit(app.state.services.settings), seen


def chunks(head: bytes = b"") -> Iterator[bytes]:
    """A body of SENT bytes in CHUNK pieces (httpx sends it chunked: no Content-Length)."""
    yield head
    for _ in range(SENT // CHUNK):
        yield b" " * CHUNK


BOUNDARY = "f5serveboundary"
MULTIPART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
    "Content-Type: audio/wav\r\n\r\n"
).encode()


def steps_done(request: Any) -> int:
    """Flow steps run for a request's chunks (each chunk counts its own)."""
    return sum(item.step for item in request.prepared.items)


@pytest.mark.parametrize(
    ("path", "head", "content_type"),
    [
        ("/v1/tts", b'{"text": "', "application/json"),
        ("/v1/voices", MULTIPART_HEAD, f"multipart/form-data; boundary={BOUNDARY}"),
    ],
)
def test_chunked_body_stops_at_the_limit(
    server: tuple[str, int, list[int]], path: str, head: bytes, content_type: str
) -> None:
    url, limit, seen = server
    seen.clear()
    headers: dict[str, Any] = {"content-type": content_type}
    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post(path, content=chunks(head), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert limit < SENT // 4
    assert sum(seen) <= limit + CHUNK  # the app never took the whole body


# ------------------------------------------------------------------------- abandoned requests

LONG = "A request whose client hangs up before the answer. " * 4


@pytest.fixture
def gated(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Flow steps wait for the returned event (set at the end in any case)."""
    gate = threading.Event()
    step = Scheduler._step

    def gated_step(self: Scheduler) -> None:
        gate.wait(60)
        step(self)

    monkeypatch.setattr(Scheduler, "_step", gated_step)
    yield gate
    gate.set()


def scheduler(app: FastAPI) -> Scheduler:
    models = app.state.services.models
    return next(iter(models._schedulers.values()))[1]  # type: ignore[no-any-return]


def requests_in(sched: Scheduler) -> list[Any]:
    """The requests with chunks waiting or in the batch."""
    with sched._wake:
        chunks = [*sched._pending, *sched._active.values()]
    return list({id(c.request): c.request for c in chunks}.values())


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/tts", {"text": LONG, "voice": "narrator"}),
        (
            "/v1/audio/speech",
            {"model": "tts-1", "input": LONG, "voice": "narrator", "response_format": "pcm"},
        ),
    ],
)
def test_a_client_that_hangs_up_cancels_its_synthesis(
    app: FastAPI,
    server: tuple[str, int, list[int]],
    gated: threading.Event,
    path: str,
    body: dict[str, Any],
) -> None:
    url = server[0]
    port = int(url.rsplit(":", 1)[1])
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(head + payload)
    wait_until(lambda: app.state.services.models._schedulers, "no model was loaded")
    sched = scheduler(app)
    wait_until(lambda: requests_in(sched), "the request never reached the scheduler")
    (request,) = requests_in(sched)
    client.close()  # hang up while the first flow step waits
    wait_until(lambda: request.cancelled, "the abandoned synthesis was not cancelled")
    gated.set()
    wait_until(lambda: not requests_in(sched), "the batch slots were not freed")
    # only the flow step already under way when the client left ran, of all it would have run
    assert steps_done(request) <= 1 < sum(item.steps for item in request.prepared.items)


def test_a_cancelled_job_stops_and_frees_its_slots(
    app: FastAPI, server: tuple[str, int, list[int]], gated: threading.Event
) -> None:
    with httpx.Client(base_url=server[0], timeout=60) as client:
        submitted = client.post("/v1/jobs", json={"text": LONG, "voice": "narrator"})
        assert submitted.status_code == 202, submitted.text
        job_url = f"/v1/jobs/{submitted.json()['job_id']}"
        wait_until(lambda: app.state.services.models._schedulers, "no model was loaded")
        sched = scheduler(app)
        wait_until(lambda: requests_in(sched), "the job never reached the scheduler")
        (request,) = requests_in(sched)
        assert client.delete(job_url).json()["status"] == "cancelled"
        wait_until(lambda: request.cancelled, "the cancelled job's synthesis went on")
        gated.set()
        wait_until(lambda: not requests_in(sched), "the batch slots were not freed")
        assert steps_done(request) <= 1 < sum(item.steps for item in request.prepared.items)
        assert client.get(job_url).json()["status"] == "cancelled"


def test_a_500_says_connection_close_and_the_next_request_succeeds(
    server: tuple[str, int, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn drops the connection after an unexpected error: the 500 must announce it, so a
    keep-alive client opens a new connection for its next request instead of being reset."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(listing, "voices", broken)
    url = server[0]
    with httpx.Client(base_url=url, timeout=60) as client:
        failed = client.get("/v1/voices")
        assert failed.status_code == 500, failed.text
        assert failed.json()["error"]["code"] == "internal_error"
        assert failed.headers["connection"] == "close"
        monkeypatch.undo()
        assert client.get("/health").status_code == 200
