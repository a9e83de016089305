"""The request body limit, counted as the bytes arrive.

``Content-Length`` alone is not enough: a chunked body declares no length. :class:`BodyLimit`
wraps the ASGI ``receive`` channel and stops reading once more than the limit has arrived, so
neither a JSON body nor a multipart upload (spooled to a temporary file) can grow past it. The
answer is then 413 with the JSON envelope, whatever the layers in between made of the error.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from f5serve.errors import PayloadTooLarge
from f5serve.http.errors import error_response


class BodyTooLarge(Exception):
    """Raised from ``receive`` once the body has passed the limit."""


class BodyLimit:
    """ASGI middleware: at most ``limit`` bytes of request body per request (413 past it)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            error = PayloadTooLarge(f"request body is {int(length)} bytes (at most {self.limit})")
            await error_response(error)(scope, receive, send)
            return
        guarded = _Guarded(self.limit, scope, receive, send)
        try:
            await self.app(scope, guarded.receive, guarded.send)
        except Exception:
            if not guarded.answered:
                raise


class _Guarded:
    """One request's channels: ``receive`` counts, ``send`` answers 413 in place of whatever
    the app answers once the limit was passed."""

    def __init__(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        self.limit = limit
        self.scope = scope
        self._receive = receive
        self._send = send
        self.received = 0
        self.answered = False

    async def receive(self) -> Message:
        message = await self._receive()
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.received <= self.limit:
            await self._send(message)
        elif message["type"] == "http.response.start" and not self.answered:
            self.answered = True
            error = PayloadTooLarge(f"the request body is larger than {self.limit} bytes")
            await error_response(error)(self.scope, self._receive, self._send)
