"""LocalStorage: atomic whole-object storage in a directory, and the backend factory."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from f5serve.core.storage import LocalStorage, Storage, StorageError, open_storage
from f5serve.errors import NotFound


def test_put_then_get_and_info_keep_bytes_type_and_sha256(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    info = storage.put("output/job1.wav", b"RIFF-data", "audio/wav")
    assert storage.get("output/job1.wav") == b"RIFF-data"
    assert info.size == 9 and info.content_type == "audio/wav"
    assert info.sha256 == hashlib.sha256(b"RIFF-data").hexdigest()
    assert storage.info("output/job1.wav") == info
    assert isinstance(storage, Storage)


def test_overwrite_replaces_the_object_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("a/b.bin", b"first", "application/octet-stream")
    storage.put("a/b.bin", b"second", "text/plain")
    assert storage.get("a/b.bin") == b"second"
    assert storage.info("a/b.bin").content_type == "text/plain"
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "key", ["../escape.wav", "/etc/passwd", "a/../../b", "", "a//b", "./a", "a\\..\\b"]
)
def test_keys_that_could_escape_the_root_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(StorageError):
        storage.put(key, b"x", "text/plain")
    assert not (tmp_path / "escape.wav").exists()


def test_missing_objects_raise_not_found_and_delete_is_idempotent(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(NotFound):
        storage.get("nope.wav")
    with pytest.raises(NotFound):
        storage.info("nope.wav")
    storage.delete("nope.wav")
    storage.put("x.wav", b"1", "audio/wav")
    storage.delete("x.wav")
    assert not storage.exists("x.wav")


def test_list_filters_by_prefix_and_hides_sidecars(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("output/1.wav", b"1", "audio/wav")
    storage.put("output/2.wav", b"22", "audio/wav")
    storage.put("voices/v/reference.wav", b"3", "audio/wav")
    assert [o.key for o in storage.list("output/")] == ["output/1.wav", "output/2.wav"]
    assert len(storage.list()) == 3
    storage.check()
    assert storage.url("output/1.wav", 60) is None


def test_open_storage_picks_local_for_paths_and_file_urls(tmp_path: Path) -> None:
    assert isinstance(open_storage(str(tmp_path / "d")), LocalStorage)
    file_backend = open_storage(f"file://{tmp_path / 'e'}")
    assert isinstance(file_backend, LocalStorage) and file_backend.root == tmp_path / "e"
    with pytest.raises(StorageError, match="unsupported"):
        open_storage("ftp://host/dir")


def test_open_storage_explains_a_missing_s3_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "f5serve.core.storage.s3", None)  # import fails
    with pytest.raises(StorageError, match="S3 backend"):
        open_storage("s3://bucket/prefix")
