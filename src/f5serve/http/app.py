"""The composition root: ``create_app(settings)`` turns settings into a running FastAPI app."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from f5serve import __version__
from f5serve.core.services import Services, build_services
from f5serve.core.settings import Settings
from f5serve.errors import F5ServeError
from f5serve.http import jobs, openai, stream_input, system, tts, voices
from f5serve.http.auth import require_api_key, warn_if_open
from f5serve.http.disconnect import CancelOnDisconnect
from f5serve.http.errors import install_error_handlers
from f5serve.http.forward import ForwardMiddleware, Relay
from f5serve.http.limits import BodyLimit
from f5serve.http.schemas import error_responses
from f5serve.http.web import install_web

log = logging.getLogger(__name__)

BODY_OVERHEAD = 1_000_000  # JSON and multipart framing on top of an upload's (base64) bytes
# what every route behind a key may answer: no valid key, over the key's requests per minute
KEY_ERRORS = error_responses(
    401,
    429,
    descriptions={
        401: "A missing, unknown or revoked API key",
        429: "Over a limit of the API key (Retry-After)",
    },
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app for ``settings`` (default: from the environment and ``.env``)."""
    settings = settings or Settings()
    services = build_services(settings)
    app = FastAPI(
        title="f5serve",
        version=__version__,
        description="F5-TTS zero-shot voice cloning: sync TTS, jobs, voices, OpenAI-compatible.",
        lifespan=_lifespan,
        docs_url=None,  # served by f5serve.http.web from the package, not from a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.state.startup_error = None  # what stopped the start-up, for serve() to report
    install_error_handlers(app)
    app.middleware("http")(_observe)
    if services.forwarding:  # an API replica: sync requests go to the workers
        app.state.relay = Relay(services, body_limit(settings))
        app.add_middleware(ForwardMiddleware, relay=app.state.relay)
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(BodyLimit, limit=body_limit(settings))
    app.include_router(system.router)
    protected = [Depends(require_api_key)]
    for module in (tts, jobs, voices, openai):
        app.include_router(module.router, dependencies=protected, responses=KEY_ERRORS)
    app.include_router(system.metrics_router, dependencies=protected, responses=KEY_ERRORS)
    app.include_router(stream_input.router)  # a WebSocket: it checks the key itself
    install_web(app)
    return app


def body_limit(settings: Settings) -> int:
    """Bytes a request body may have: the largest upload as base64, plus framing."""
    return settings.max_upload_bytes * 4 // 3 + BODY_OVERHEAD


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    services: Services = app.state.services
    try:
        await _start(services)
    except F5ServeError as exc:
        app.state.startup_error = exc
        raise
    try:
        yield
    finally:
        if services.forwarding:
            await app.state.relay.close()
        await services.close()


async def _start(services: Services) -> None:
    warn_if_open(services.settings.host, await asyncio.to_thread(services.tenancy.enabled))
    imported = await asyncio.to_thread(services.voices.import_dir)
    if imported:
        log.info("imported %d voice(s) from %s", imported, services.settings.voices_dir)
    if services.settings.preload:
        await asyncio.to_thread(services.preload)
    await services.start()


async def _observe(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Record request metrics."""
    services: Services = request.app.state.services
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    services.metrics.observe_request(
        request.method, path, response.status_code, time.perf_counter() - started
    )
    return response


def serve(settings: Settings) -> None:
    """Run the HTTP door until it is stopped (what ``f5serve serve`` and ``f5serve worker``
    start; it warns when it is open to other machines without keys): load the default model first
    (so that a model that cannot load is one line, not a traceback), then serve. A start-up
    that fails with one of our errors (a read-only database) raises it once uvicorn stops."""
    app = create_app(settings)
    if settings.preload:
        app.state.services.preload()
    quiet = _quiet_startup_failure(app)
    try:
        uvicorn.run(
            quiet, host=settings.host, port=settings.port, log_level=settings.log_level.lower()
        )
    except SystemExit:  # what uvicorn does when the start-up fails
        if app.state.startup_error is not None:
            raise app.state.startup_error from None
        raise


def _quiet_startup_failure(app: FastAPI) -> ASGIApp:
    """``app``, less the traceback uvicorn logs when the start-up fails with one of our errors
    (``serve`` reports it as one line)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def quiet(message: Message) -> None:
            failed = message["type"] == "lifespan.startup.failed"
            if failed and app.state.startup_error is not None:
                message = {"type": message["type"], "message": ""}
            await send(message)

        await app(scope, receive, quiet if scope["type"] == "lifespan" else send)

    return wrapped
