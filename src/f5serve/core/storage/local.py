"""Object storage in a local directory (the embedded default).

Each object is a file under the root; a JSON sidecar ``<file>.meta.json`` beside it keeps the
content type and sha256. Writes go to a temporary file in the same folder, are fsynced and then
renamed over the target (``os.replace``), so a reader sees the whole object or none of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from f5serve.core.storage.base import ObjectInfo, StorageError
from f5serve.errors import NotFound

META_SUFFIX = ".meta.json"


class LocalStorage:
    """:class:`~f5serve.core.storage.base.Storage` in a directory on this machine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file of ``key``; refuses absolute keys, ``..`` and anything outside the root."""
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"invalid storage key {key!r}", details={"key": key})
        if "\\" in key or "\x00" in key or key.endswith(META_SUFFIX):
            raise StorageError(f"invalid storage key {key!r}", details={"key": key})
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"storage key {key!r} escapes the storage root")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        path = self.path(key)
        digest = hashlib.sha256(data).hexdigest()
        meta = json.dumps({"content_type": content_type, "sha256": digest}).encode()
        sidecar = path.with_name(path.name + META_SUFFIX)
        with _unavailable("write", key):
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(sidecar, meta)
            try:
                _atomic_write(path, data)
            except BaseException:  # a full disk may take the small sidecar, not the object
                sidecar.unlink(missing_ok=True)
                raise
        return self.info(key)

    def get(self, key: str) -> bytes:
        try:
            with _unavailable("read", key):
                return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"object {key!r} does not exist") from None

    def info(self, key: str) -> ObjectInfo:
        path = self.path(key)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise NotFound(f"object {key!r} does not exist") from None
        meta = self._meta(path)
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            content_type=meta.get("content_type", "application/octet-stream"),
            sha256=meta.get("sha256") or hashlib.sha256(path.read_bytes()).hexdigest(),
            modified=datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc),
        )

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        path = self.path(key)
        with _unavailable("delete", key):
            path.unlink(missing_ok=True)
            path.with_name(path.name + META_SUFFIX).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        found = []
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or path.name.endswith(META_SUFFIX) or path.name.startswith("."):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                found.append(self.info(key))
        return found

    def url(self, key: str, expires_in: int) -> str | None:
        return None  # the API serves the bytes itself

    def check(self) -> None:
        try:
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".check-"):
                pass
        except OSError as exc:
            raise StorageError(f"storage directory {self.root} is not writable: {exc}") from exc

    def _meta(self, path: Path) -> dict[str, str]:
        try:
            data = json.loads(path.with_name(path.name + META_SUFFIX).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


@contextmanager
def _unavailable(action: str, key: str) -> Iterator[None]:
    """File system failures (read-only, full, permissions) as :class:`StorageError` (503); a
    missing file stays :class:`FileNotFoundError` for the caller to judge."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageError(
            f"cannot {action} {key!r} in the storage directory: {exc.strerror or exc}",
            details={"key": key},
        ) from exc


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
