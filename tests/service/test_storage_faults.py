"""Storage that refuses writes (read-only, full): 503 with ``Retry-After``, never 500, and no
orphan rows or clips; a job whose output cannot be stored fails with the storage code."""

from __future__ import annotations

import errno
import pathlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import REF_TEXT, REF_WAV, wait_until

from f5serve.core.storage import local


@contextmanager
def read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The storage directory refuses every write and removal, as a read-only mount does."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(local, "_atomic_write", refuse)
        patch.setattr(pathlib.Path, "unlink", refuse)
        yield


def upload(client: TestClient, name: str) -> Any:
    files = {"audio": ("ref.wav", REF_WAV.read_bytes(), "audio/wav")}
    return client.post("/v1/voices", data={"name": name, "ref_text": REF_TEXT}, files=files)


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert response.json()["error"]["code"] == "storage_error"


def test_voice_upload_on_read_only_storage(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with read_only(monkeypatch):
        assert_unavailable(upload(client, "read-only"))
    assert client.get("/v1/voices/read-only").status_code == 404  # no row without its clip


def test_voice_delete_on_read_only_storage_keeps_both(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = upload(client, "kept")
    assert created.status_code == 201, created.text
    voice_id = created.json()["id"]
    with read_only(monkeypatch):
        assert_unavailable(client.delete(f"/v1/voices/{voice_id}"))
    assert client.get(f"/v1/voices/{voice_id}").status_code == 200  # the row is back
    assert client.get(f"/v1/voices/{voice_id}/audio").status_code == 200  # and its clip
    assert client.delete(f"/v1/voices/{voice_id}").status_code == 204


def test_job_whose_output_cannot_be_stored_fails_with_the_storage_code(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with read_only(monkeypatch):
        submitted = client.post("/v1/jobs", json={"text": "Stored nowhere.", "voice": "narrator"})
        assert submitted.status_code == 202
        job_url = f"/v1/jobs/{submitted.json()['job_id']}"
        wait_until(
            lambda: client.get(job_url).json()["status"] not in ("queued", "running"),
            "the job never finished",
        )
    job = client.get(job_url).json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "storage_error"
