"""A real uvicorn server: the body limit is counted as the bytes arrive (chunked bodies that
declare no length)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import live_server, make_settings
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, list[int]]]:
    settings = make_settings(tmp_path_factory.mktemp("live"), max_upload_bytes=30_000)
    app = create_app(settings)
    seen: list[int] = []
    app.user_middleware.append(Middleware(BytesSeen, seen=seen))
    with live_server(app) as url:
        yield url, body_limit(settings), seen


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
