"""Every route of the app but the probes needs a key when keys are configured: the routes are
read from the app's own OpenAPI document, so a route added later is covered without touching
this test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers import make_settings

from f5serve.http.app import create_app

PUBLIC = {"/health", "/ready"}
BAD_CREDENTIALS = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic a2V5"}]


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every API route."""
    found = []
    for template, operations in app.openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", "some-id", template)
        found += [(method.upper(), path) for method in sorted(operations)]
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    root: Path = tmp_path_factory.mktemp("auth")
    return create_app(make_settings(root, api_keys="the-key", preload=False, run_worker=False))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def protected(app: FastAPI) -> list[tuple[str, str]]:
    return [(method, path) for method, path in routes(app) if path not in PUBLIC]


def test_the_routes_are_found(app: FastAPI) -> None:
    found = protected(app)
    assert ("POST", "/v1/tts") in found and ("DELETE", "/v1/jobs/some-id") in found
    assert len(found) >= 16


def test_every_protected_route_refuses_a_missing_or_wrong_key(
    app: FastAPI, client: TestClient
) -> None:
    for method, path in protected(app):
        for headers in BAD_CREDENTIALS:
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthorized"


def test_the_probes_are_open(client: TestClient) -> None:
    for path in PUBLIC:
        assert client.get(path).status_code != 401
