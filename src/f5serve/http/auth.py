"""API keys: ``Authorization: Bearer <key>`` once any key exists (``F5SERVE_API_KEYS``, or
``f5serve keys create``); each key is a tenant (:mod:`f5serve.core.tenants`)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from f5serve.core.services import Services
from f5serve.core.tenants import Tenant, sees_all
from f5serve.errors import Forbidden

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    description="An API key: one of F5SERVE_API_KEYS (admin) or made by `f5serve keys create`.",
)


async def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Tenant | None:
    """FastAPI dependency: the request's tenant (None on an open server), counted against its
    requests per minute; 401 for a missing, unknown or revoked key, 429 over the limit."""
    services: Services = request.app.state.services
    key = credentials.credentials if credentials is not None else None
    return await asyncio.to_thread(services.tenancy.admit, key)


async def require_admin(
    tenant: Annotated[Tenant | None, Depends(require_api_key)],
) -> Tenant | None:
    """FastAPI dependency: 403 unless the key is an admin key (or the server is open)."""
    if not sees_all(tenant):
        raise Forbidden("this needs an admin key")
    return tenant


TenantDep = Annotated[Tenant | None, Depends(require_api_key)]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_open(host: str, keys: bool) -> bool:
    """Log a warning when the API is open to other machines (no ``keys``); True if it
    warned."""
    if keys or is_loopback(host):
        return False
    log.warning(
        "f5serve listens on %s without API keys: anyone who can reach it can use it "
        "(set F5SERVE_API_KEYS or run `f5serve keys create`)",
        host,
    )
    return True
