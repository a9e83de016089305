"""Optional API keys: ``Authorization: Bearer <key>`` when ``F5SERVE_API_KEYS`` is set."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from f5serve.errors import Unauthorized

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, description="An API key from F5SERVE_API_KEYS.")


def key_matches(given: str, keys: frozenset[str]) -> bool:
    """Constant-time comparison against every configured key."""
    return any(hmac.compare_digest(given.encode(), key.encode()) for key in keys)


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries a configured key (open if none)."""
    keys: frozenset[str] = request.app.state.services.settings.api_key_set
    if not keys:
        return
    credentials: HTTPAuthorizationCredentials | None = await bearer(request)
    if credentials is None or not key_matches(credentials.credentials, keys):
        raise Unauthorized("a valid API key is required: send 'Authorization: Bearer <key>'")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_open(host: str, keys: frozenset[str]) -> bool:
    """Log a warning when the API is open to other machines; True if it warned."""
    if keys or is_loopback(host):
        return False
    log.warning(
        "f5serve listens on %s without API keys: anyone who can reach it can use it "
        "(set F5SERVE_API_KEYS)",
        host,
    )
    return True
