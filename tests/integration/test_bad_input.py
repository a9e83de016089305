"""Hostile input answers 4xx with the error envelope (HTTP) or a typed error (RunPod), never a
500 or ``handler_exception``, on SQLite and PostgreSQL alike: NUL characters and lone surrogates,
names too long for a file or a column, numbers too large for the database. Jobs make the checks
of ``/v1/tts`` when they are submitted, not when they run."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from fresh_databases import fresh_postgres

from f5serve.core.db import upgrade_database
from f5serve.http.app import create_app
from f5serve.runpod.__main__ import build_worker
from f5serve.runpod.settings import RunPodSettings

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import REF_TEXT, REF_WAV, make_deployment, make_settings

AUTH = {"Authorization": "Bearer k"}
NARRATOR = {"text": "Hello there.", "voice": "narrator"}


def silent_flac(seconds: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * 8000), dtype=np.int16), 8000, format="FLAC")
    return buffer.getvalue()


BOMB = base64.b64encode(silent_flac(20 * 60)).decode()  # 20 minutes in a few KB


@contextlib.contextmanager
def database(kind: str, root: Path) -> Iterator[str]:
    """The URL of an empty database of ``kind`` at the newest schema."""
    if kind == "sqlite":
        yield f"sqlite:///{root / 'bad.db'}"
        return
    with fresh_postgres() as url:
        upgrade_database(url)
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp(f"bad-{request.param}")
    with database(request.param, root) as url:
        # it runs its worker: on PostgreSQL a process that runs none is an API replica, which
        # forwards /v1/tts to the workers
        settings = make_settings(root, database_url=url, api_keys="k")
        with TestClient(create_app(settings)) as test_client:
            yield test_client


def raw_json(body: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments that send ``body`` as JSON exactly (lone surrogates included)."""
    return {"content": json.dumps(body), "headers": {**AUTH, "content-type": "application/json"}}


BAD_SPEECH = [
    ({"text": "Hello.", "ref_name": "sample/nar\x00rator.wav"}, 422),
    ({"text": "Hello.", "voice": "narr\x00ator"}, 422),
    ({"text": "Hello.", "ref_name": "x" * 300}, 422),
    ({"text": "Hello.", "ref_name": "x" * 253}, 422),  # 257 bytes once ".wav" is added
    ({"text": "Hello \ud800 there.", "voice": "narrator"}, 422),
    ({"text": "Hello.", "voice": "narrator", "ref_text": "\ud800"}, 422),
    ({"text": "Hello.", "voice": "narrator", "language": "x" * 40}, 422),
    ({"text": "Hello.", "voice": "narrator", "language": "zz"}, 422),  # no model speaks it
    ({"text": "Hello.", "ref_audio": BOMB, "ref_text": "Hi."}, 413),
]


@pytest.mark.parametrize(("body", "status"), BAD_SPEECH)
@pytest.mark.parametrize("path", ["/v1/tts", "/v1/jobs"])
def test_bad_speech_requests_are_refused_at_once(
    client: TestClient, path: str, body: dict[str, Any], status: int
) -> None:
    response = client.post(path, **raw_json(body))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/ab%00cd",
        "/v1/jobs/ab%00cd/audio",
        "/v1/voices/ab%00cd",
        "/v1/voices/ab%00cd/audio",
        "/v1/jobs?offset=9223372036854775808",
        "/v1/jobs?limit=5&offset=99999999999999999999",
    ],
)
def test_bad_ids_and_numbers_are_4xx(client: TestClient, path: str) -> None:
    response = client.get(path, headers=AUTH)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"]


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_bad_voice_id_in_changes_is_4xx(client: TestClient, method: str) -> None:
    response = client.request(method, "/v1/voices/ab%00cd", headers=AUTH, json={"name": "x"})
    assert 400 <= response.status_code < 500, response.text
    assert client.delete("/v1/jobs/ab%00cd", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "long-language", "ref_text": REF_TEXT, "language": "x" * 40},
        {"name": "nul", "ref_text": "bad \x00 text"},
    ],
)
def test_bad_voice_uploads_are_422(client: TestClient, fields: dict[str, str]) -> None:
    files = {"audio": ("ref.wav", REF_WAV.read_bytes(), "audio/wav")}
    response = client.post("/v1/voices", headers=AUTH, data=fields, files=files)
    assert response.status_code == 422, response.text


def test_bad_voice_patch_is_422(client: TestClient) -> None:
    response = client.patch("/v1/voices/narrator", **raw_json({"language": "x" * 40}))
    assert response.status_code == 422, response.text
    response = client.patch("/v1/voices/narrator", **raw_json({"ref_text": "\ud800"}))
    assert response.status_code == 422, response.text


# ------------------------------------------------------------------------------------ RunPod


@pytest.fixture(scope="module")
def runpod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("bad-runpod")
    settings = RunPodSettings(_env_file=None, **make_deployment(root))  # type: ignore[call-arg]
    worker = build_worker(settings, None)
    yield worker
    asyncio.run(worker.services.close())


@pytest.mark.parametrize(("body", "status"), BAD_SPEECH)
def test_runpod_bad_input_is_a_typed_error(runpod: Any, body: dict[str, Any], status: int) -> None:
    out = asyncio.run(runpod.handle({"id": "bad", "input": body}))
    assert out["error"] == "invalid_input", out


@pytest.mark.parametrize("job_id", ["ab\x00cd", "x" * 300])
def test_runpod_bad_download_id_is_a_typed_error(runpod: Any, job_id: str) -> None:
    out = asyncio.run(
        runpod.handle({"id": "bad", "input": {"endpoint": "download", "job_id": job_id}})
    )
    assert out["error"] in ("invalid_input", "not_found"), out
