"""Probes, metrics, usage and the model list."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from f5serve.core import listing
from f5serve.core.tenants import Tenant
from f5serve.http.auth import TenantDep, require_admin
from f5serve.http.deps import ServicesDep
from f5serve.http.errors import UNAVAILABLE_RETRY_AFTER
from f5serve.http.schemas import (
    RETRY_AFTER,
    KeyUsage,
    ModelCard,
    ModelList,
    Readiness,
    UsageList,
    error_responses,
)

router = APIRouter(tags=["system"])
metrics_router = APIRouter(tags=["system"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Database, storage, the default model and the job queue are usable",
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
    summary="Prometheus metrics (an admin key: they count every key's usage)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(403, descriptions={403: "The key is not an admin key"}),
    },
)
async def metrics(
    services: ServicesDep, _: Annotated[Tenant | None, Depends(require_admin)]
) -> Response:
    return Response(services.metrics.render(), media_type=services.metrics.content_type)


@metrics_router.get(
    "/v1/usage",
    summary="Today's usage and limits of the caller's key (every key for an admin)",
    responses=error_responses(503),
)
async def usage(services: ServicesDep, tenant: TenantDep) -> UsageList:
    used = await asyncio.to_thread(services.tenancy.usage, tenant)
    return UsageList(
        keys=[
            KeyUsage(
                key_id=u.tenant.id,
                name=u.tenant.name,
                admin=u.tenant.admin,
                revoked=u.revoked,
                day=u.day,
                requests=u.requests,
                audio_seconds=round(u.audio_seconds, 3),
                requests_per_minute=u.tenant.limits.requests_per_minute,
                audio_seconds_per_day=u.tenant.limits.audio_seconds_per_day,
            )
            for u in used
        ]
    )


@metrics_router.get("/v1/models", summary="Models (OpenAI-style list)")
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
