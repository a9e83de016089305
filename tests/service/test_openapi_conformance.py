"""Answers that once broke the app's OpenAPI document, each checked against it with the checks
of the schemathesis run (``tests/integration/schemathesis.toml``): documented status, content
type, body and headers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers import make_settings

from f5serve.core.storage.base import StorageError
from f5serve.http.app import create_app

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

schemathesis = pytest.importorskip("schemathesis")
CONFIG = Path(__file__).parents[1] / "integration" / "schemathesis.toml"


def assert_documented(
    app: FastAPI, method: str, path: str, response: httpx.Response, **path_parameters: str
) -> None:
    """``response`` of the operation ``method path`` (its template) passes the run's checks (but
    ignored_auth: these servers are open)."""
    with CONFIG.open("rb") as handle:
        settings = tomllib.load(handle)
    settings["checks"]["ignored_auth"]["enabled"] = False
    config = schemathesis.Config.from_dict(settings)
    schema = schemathesis.openapi.from_dict(app.openapi(), config=config)
    case = schema[path][method].Case(path_parameters=path_parameters)
    case.validate_response(response)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("keyed"), api_keys="k", preload=False)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_failure_of_a_text_route_is_documented_as_json(client: TestClient) -> None:
    response = client.get("/v1/jobs/nobody/subtitles", params={"format": "doc"})
    assert response.status_code == 422
    template = "/v1/jobs/{job_id}/subtitles"
    assert_documented(client.app, "GET", template, response, job_id="nobody")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "parameters"),
    [
        ("POST", "/v1/jobs", {}),
        ("PATCH", "/v1/voices/{voice_id}", {"voice_id": "narrator"}),
        ("POST", "/v1/tts", {}),
    ],
)
def test_a_body_that_is_json_but_no_object_is_a_documented_400(
    client: TestClient, method: str, path: str, parameters: dict[str, str]
) -> None:
    response = client.request(method, path.format(**parameters), json=[None, None])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == "the request body must be a JSON object"
    assert_documented(client.app, method, path, response, **parameters)  # type: ignore[arg-type]


def test_malformed_multipart_is_a_documented_400(client: TestClient) -> None:
    response = client.post(
        "/v1/voices",
        content=b"--b\r\nnot a part\r\n--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 400, response.text
    assert_documented(client.app, "POST", "/v1/voices", response)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/metrics", "/v1/models", "/v1/voices", "/v1/jobs"])
def test_a_missing_key_is_a_documented_401(keyed: TestClient, path: str) -> None:
    response = keyed.get(path)
    assert response.status_code == 401
    assert_documented(keyed.app, "GET", path, response)  # type: ignore[arg-type]


def test_not_ready_is_a_documented_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise StorageError("the storage cannot be reached")

    monkeypatch.setattr(client.app.state.services.storage, "check", unreachable)  # type: ignore[attr-defined]
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"].startswith("unavailable")
    assert_documented(client.app, "GET", "/ready", response)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/tts", {"text": "Hello.", "voice": "narrator", "stream_format": "sse"}),
        (
            "/v1/audio/speech",
            {"model": "tts-1", "input": "Hello.", "voice": "narrator", "stream_format": "sse"},
        ),
    ],
)
def test_server_sent_events_are_documented(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert_documented(client.app, "POST", path, response)  # type: ignore[arg-type]


def test_a_job_submitted_again_is_a_documented_200(client: TestClient) -> None:
    body = {"text": "Once more.", "voice": "narrator", "job_id": "again"}
    assert client.post("/v1/jobs", json=body).status_code == 202
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["job_id"] == "again"
    assert_documented(client.app, "POST", "/v1/jobs", response)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PUT", "/v1/jobs", "GET, POST"), ("POST", "/v1/jobs/{job_id}", "DELETE, GET")],
)
def test_a_method_a_path_lacks_is_405_naming_all_it_has(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    """GET and POST /v1/jobs are two routes: the 405 names both, not the first one's."""
    response = client.request(method, path.format(job_id="some-job"))
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"
