"""Forwarding: an API replica that runs no models (``--no-worker`` on PostgreSQL) sends each
sync request (``/v1/tts``, ``/v1/tts/upload``, ``/v1/audio/speech``, streaming included) to the
least loaded live worker that serves the request's model, and relays the answer as it comes.

A worker that refuses the connection (it has just died) is skipped, before any byte was sent;
when no worker can take the request the answer is 503 with ``Retry-After``. A worker that dies
mid-answer ends the relayed response early (the client sees a truncated body: a clear error,
not a hang). The worker does all validation, authentication included, with the same settings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from f5serve.core.db import WorkerRow
from f5serve.core.services import Services
from f5serve.errors import F5ServeError, Overloaded, PayloadTooLarge
from f5serve.http.errors import error_response

log = logging.getLogger(__name__)

FORWARDED = frozenset({"/v1/tts", "/v1/tts/upload", "/v1/audio/speech"})
ATTEMPTS = 3  # workers tried before giving up (each only if the connection was refused)
RETRY_AFTER = 5.0  # seconds a client should wait when no worker can take its request
DIRECTORY_TTL = 1.0  # seconds a replica reuses the list of live workers (loads change slower)
NOT_RELAYED = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "upgrade"})


class Relay:
    """The HTTP client of one API replica: picks a worker and sends it a request."""

    def __init__(self, services: Services, body_limit: int) -> None:
        self.services = services
        self.body_limit = body_limit
        timeout = httpx2.Timeout(services.settings.request_timeout + 30, connect=5.0)
        self.client = httpx2.AsyncClient(timeout=timeout)
        self._live: dict[str, tuple[float, list[WorkerRow]]] = {}

    async def close(self) -> None:
        await self.client.aclose()

    async def forward(self, request: Request) -> Response:
        """The answer of a live worker of the request's model, or the reason there is none."""
        body = await _read_body(request, self.body_limit)
        model = await self._model(request)
        workers = await self._workers(model)
        for worker in workers[:ATTEMPTS]:
            try:
                upstream = await self._send(worker.url, request, body)
            except httpx2.TransportError as exc:  # nothing was answered: the next one may
                log.warning("worker %s at %s is unreachable: %s", worker.id, worker.url, exc)
                continue
            return _relay(upstream)
        reason = "no live worker serves" if not workers else "no worker could take"
        raise Overloaded(f"{reason} model {model!r}; try again later", retry_after=RETRY_AFTER)

    async def _workers(self, model: str) -> list[WorkerRow]:
        """The live workers of ``model``, least loaded first (read at most every
        :data:`DIRECTORY_TTL` while there are some; a worker that died since refuses the
        connection and is skipped)."""
        read_at, workers = self._live.get(model, (0.0, []))
        if not workers or time.monotonic() - read_at > DIRECTORY_TTL:
            assert self.services.workers is not None
            workers = await asyncio.to_thread(self.services.workers.live, model)
            self._live[model] = (time.monotonic(), workers)
        return workers

    async def _model(self, request: Request) -> str:
        """The model that will speak the request (the default one when the request is not
        valid: the worker answers the error)."""
        registry = self.services.registry
        try:
            if request.headers.get("content-type", "").startswith("multipart/"):
                fields: dict[str, Any] = dict(await request.form())
            else:
                fields = await request.json()
            text = str(fields.get("text") or fields.get("input") or "")
            language = str(fields.get("language") or "auto")
            model = fields.get("model")
            if model is not None and model not in {spec.name for spec in registry.specs()}:
                model = None  # an OpenAI model name (tts-1) means the default route
            return await asyncio.to_thread(registry.route, text, language, model)
        except (ValueError, AttributeError, F5ServeError):
            return registry.default_model

    async def _send(self, url: str, request: Request, body: bytes) -> httpx2.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_RELAYED}
        target = url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        outgoing = self.client.build_request("POST", target, headers=headers, content=body)
        return await self.client.send(outgoing, stream=True)


class ForwardMiddleware:
    """ASGI middleware (outermost, and not Starlette's ``BaseHTTPMiddleware``, which would end
    a relayed stream cleanly when the worker dies mid-answer) that forwards the sync routes."""

    def __init__(self, app: ASGIApp, relay: Relay) -> None:
        self.app = app
        self.relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in FORWARDED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            response = await self.relay.forward(Request(scope, receive))
        except F5ServeError as exc:
            response = error_response(exc)
        metrics = self.relay.services.metrics
        status = response.status_code
        metrics.observe_request("POST", scope["path"], status, time.perf_counter() - started)
        await response(scope, receive, send)


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"request body is {length} bytes (at most {limit})")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request body is more than {limit} bytes")
    request._body = body  # read again by request.json() / request.form()
    return body


def _relay(upstream: httpx2.Response) -> Response:
    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in NOT_RELAYED}
    return StreamingResponse(_body(upstream), status_code=upstream.status_code, headers=headers)


async def _body(upstream: httpx2.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx2.TransportError as exc:
        log.warning("the worker stopped answering mid-response: %s", exc)
        raise  # the server closes the connection: the client sees a truncated response
    finally:
        await upstream.aclose()
