"""The storage interface every backend implements.

Keys are ``/``-separated relative names such as ``output/<job_id>.wav`` or
``voices/<voice_id>/reference.wav``; backends reject absolute keys and ``..`` segments.
Writes are atomic: a reader sees the whole object or none of it.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from f5serve.errors import F5ServeError


class StorageError(F5ServeError):
    """The storage backend failed (unreachable, bad credentials, missing bucket...)."""

    code = "storage_error"
    http_status = 503


def log_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled by a background loop: one warning line for a storage or
    database fault (expected while either is away, and its message says what), a traceback for
    anything else (a bug)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, StorageError):
        logger.warning(f"{message}: %s", *args, exc)
    else:
        logger.exception(message, *args)


@dataclass(frozen=True)
class ObjectInfo:
    """What a backend knows about a stored object."""

    key: str  # the object's key
    size: int  # bytes
    content_type: str  # MIME type given at write time
    sha256: str  # hex digest of the content
    modified: datetime  # last write (UTC)


@runtime_checkable
class Storage(Protocol):
    """Whole-object storage. Missing objects raise :class:`f5serve.errors.NotFound`."""

    def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically (replacing any previous object)."""
        ...

    def get(self, key: str) -> bytes:
        """The content of ``key``."""
        ...

    def info(self, key: str) -> ObjectInfo:
        """Size, type, checksum and time of ``key``."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix``."""
        ...

    def url(self, key: str, expires_in: int) -> str | None:
        """A URL to download ``key`` for ``expires_in`` seconds, or None if the backend has
        none (the API then serves the bytes itself)."""
        ...

    def check(self) -> None:
        """Raise :class:`StorageError` if the backend is not usable (for ``/ready``)."""
        ...
