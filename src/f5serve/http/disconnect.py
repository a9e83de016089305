"""Abandoned requests stop: a client that hangs up cancels the work of its request.

Starlette keeps running a handler whose client is gone, and a streaming response notices only
at its next write; a synthesis would run to its end for nobody. :class:`CancelOnDisconnect`
watches the connection once the request body has been read and cancels the handler when the
client disconnects before the response is complete; cancelling the awaiting task is what frees a
synthesis's batch slots in the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CancelOnDisconnect:
    """ASGI middleware: cancel the request's handler when its client disconnects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = _Watch(receive, send)
        handler = asyncio.create_task(self._handle(scope, watch))
        gone = asyncio.create_task(watch.gone.wait())
        try:
            await asyncio.wait({handler, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done() and not watch.answered:
                handler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await handler
                return
            await handler
        finally:
            handler.cancel()
            gone.cancel()
            watch.stop()

    async def _handle(self, scope: Scope, watch: _Watch) -> None:
        await self.app(scope, watch.receive, watch.send)


class _Watch:
    """One request's channels. Once the body has arrived, a task reads the connection for the
    disconnect (nothing else can come), and hands it to the app when the app asks."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.gone = asyncio.Event()
        self.answered = False
        self._listener: asyncio.Task[None] | None = None

    async def receive(self) -> Message:
        if self._listener is not None:
            await self.gone.wait()
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.gone.set()
        elif not message.get("more_body", False):
            self._listener = asyncio.create_task(self._listen())
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.answered = True
        await self._send(message)

    async def _listen(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone.set()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
