"""Probes, metrics and the model list."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from f5serve.core import listing
from f5serve.http.deps import ServicesDep
from f5serve.http.errors import UNAVAILABLE_RETRY_AFTER
from f5serve.http.schemas import RETRY_AFTER, ModelCard, ModelList, Readiness, error_responses

router = APIRouter(tags=["system"])
metrics_router = APIRouter(tags=["system"])
UNAUTHORIZED = error_responses(401)


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Database, storage and the default model are usable",
    response_model=Readiness,
    responses={503: {"model": Readiness, "headers": RETRY_AFTER}},
)
async def ready(services: ServicesDep) -> JSONResponse:
    checks = await asyncio.to_thread(services.check_ready)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks},
        status_code=200 if ok else 503,
        headers=None if ok else {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **UNAUTHORIZED},
)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=services.metrics.content_type)


@metrics_router.get("/v1/models", summary="Models (OpenAI-style list)", responses=UNAUTHORIZED)
async def list_models(services: ServicesDep) -> ModelList:
    cards = [
        ModelCard(
            id=m.name,
            languages=m.languages,
            default=m.default,
            loaded=m.loaded,
            device=m.device,
            bytes=m.bytes,
            licence=m.licence,
            description=m.description,
        )
        for m in listing.models(services.registry)
    ]
    return ModelList(data=cards)
