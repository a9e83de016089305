"""The service's engine settings reach what serves: packing in the loaded engine, the admission
of streams' first chunks in its scheduler."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi.testclient import TestClient
from helpers import assert_speech, make_settings

from f5serve.core.services import Services
from f5serve.engine.pipeline import Engine
from f5serve.engine.scheduler import Scheduler
from f5serve.http.app import create_app


def loaded(services: Services) -> tuple[Engine, Scheduler]:
    async def hold() -> tuple[Engine, Scheduler]:
        async with services.models.hold(services.models.registry.default_model) as pair:
            return pair

    return asyncio.run(hold())


def test_packing_and_opener_settings_reach_the_engine_and_its_scheduler(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, packing="on", openers="alone", opener_frames=4096)
    with TestClient(create_app(settings)) as client:
        engine, scheduler = loaded(client.app.state.services)  # type: ignore[attr-defined]
        assert engine.packed is True
        assert (scheduler.openers, scheduler.opener_frames) == ("alone", 4096)
        response = client.post(
            "/v1/tts",
            json={
                "text": "Packed and streamed.",
                "voice": "narrator",
                "nfe_steps": 2,
                "stream": True,
            },
        )
        assert response.status_code == 200, response.text
        assert_speech(response.content)


def test_by_default_nothing_is_packed_and_openers_go_first_without_waves(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        engine, scheduler = loaded(client.app.state.services)  # type: ignore[attr-defined]
        assert engine.packed is False
        assert (scheduler.openers, scheduler.opener_frames) == ("first", None)
