"""ModelManager.on_unload: whoever keeps something per model hears of every unload."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from f5serve.registry import ModelManager

MB = 1_000_000


@dataclass
class Stub:
    name: str
    bytes: int = 100 * MB


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_listeners_hear_of_evictions_idle_unloads_explicit_unloads_and_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    mm: ModelManager[Stub] = ModelManager(
        Stub,
        memory_budget=250 * MB,
        idle_seconds=60,
        pinned=["default"],
        clock=clock,
        size_of=lambda m: m.bytes,
        device_of=lambda m: "cpu",
    )
    heard: list[tuple[str, Stub]] = []

    def broken(name: str, model: Stub) -> None:
        raise RuntimeError("a listener bug")

    mm.on_unload(broken)  # logged; the next listener still runs and the model still goes
    mm.on_unload(lambda name, model: heard.append((name, model)))
    default, a = mm.get("default"), mm.get("a")
    clock.now += 1
    b = mm.get("b")  # 300 MB > 250 MB: "a" (least recently used, not pinned) is evicted
    assert heard == [("a", a)] and not mm.is_loaded("a")
    clock.now += 61
    with caplog.at_level(logging.ERROR, logger="f5serve.registry.manager"):
        assert mm.evict_idle() == ["b"]  # the pinned default stays
    assert heard[-1] == ("b", b) and "unload listener failed for model b" in caplog.text
    c = mm.get("c")
    assert mm.unload("c") and heard[-1] == ("c", c)
    mm.close()
    assert heard[-1] == ("default", default) and len(heard) == 4


def test_the_limits_are_readable() -> None:
    mm: ModelManager[Stub] = ModelManager(Stub, memory_budget={"cpu": 8}, max_models=2)
    assert mm.memory_budget == {"cpu": 8} and mm.max_models == 2 and mm.idle_seconds is None
    mm.start_reaper()  # no idle time: no reaper
    assert not mm.reaping
    idle: ModelManager[Stub] = ModelManager(Stub, idle_seconds=30)
    idle.start_reaper()
    assert idle.reaping
    idle.close()
    assert not idle.reaping
