"""Object storage for job outputs and voice references (local directory or S3-compatible)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from f5serve.core.storage.base import ObjectInfo, Storage, StorageError
from f5serve.core.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "Storage", "StorageError", "open_storage"]


def open_storage(url: str, **s3_options: Any) -> Storage:
    """The backend for ``url``: ``s3://bucket/prefix`` (S3-compatible), ``file:///dir`` or a
    plain directory path (local). ``s3_options`` are handed to ``S3Storage.from_url``."""
    scheme = urlparse(url).scheme
    if scheme == "s3":
        try:
            module = importlib.import_module("f5serve.core.storage.s3")
        except ImportError as exc:
            raise StorageError(
                f"storage {url!r} needs the S3 backend (f5serve.core.storage.s3), which is "
                f"not available in this installation: {exc}"
            ) from exc
        storage: Storage = module.S3Storage.from_url(url, **s3_options)
        return storage
    if scheme == "file":
        return LocalStorage(Path(urlparse(url).path))
    if scheme and len(scheme) > 1:  # a one-letter scheme is a Windows drive
        raise StorageError(f"unsupported storage URL {url!r}: use a directory or s3://bucket")
    return LocalStorage(url)
