"""Loaded models: one load per model under concurrency, LRU under budgets, pins, idle unloading."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from f5serve.engine.pipeline import Engine
from f5serve.errors import ModelUnavailable
from f5serve.registry import ModelManager
from f5serve.registry.manager import engine_bytes, module_bytes

MB = 1_000_000


@dataclass
class Stub:
    """A stand-in for an Engine: a name, a device and a size (the real engine is tested below)."""

    name: str
    device: str
    bytes: int


class Loader:
    """Counts loads per name; each load takes ``delay`` seconds."""

    def __init__(self, sizes: dict[str, int] | None = None, delay: float = 0.0) -> None:
        self.sizes = sizes or {}
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.fail: set[str] = set()

    def __call__(self, name: str) -> Stub:
        with self.lock:
            self.calls[name] += 1
        time.sleep(self.delay)
        if name in self.fail:
            raise RuntimeError(f"cannot load {name}")
        device = "cuda:0" if name.startswith("gpu") else "cpu"
        return Stub(name, device, self.sizes.get(name, 100 * MB))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manager(loader: Loader, clock: Clock | None = None, **kw: Any) -> ModelManager[Stub]:
    return ModelManager(
        loader,
        clock=clock or Clock(),
        size_of=lambda m: m.bytes,
        device_of=lambda m: m.device,
        **kw,
    )


def test_many_threads_asking_for_one_model_load_it_once() -> None:
    loader = Loader(delay=0.2)
    mm = manager(loader)
    results: list[Stub] = []
    threads = [threading.Thread(target=lambda: results.append(mm.get("a"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loader.calls == Counter({"a": 1})
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_loading_one_model_does_not_block_another() -> None:
    loader = Loader(delay=0.3)
    mm = manager(loader)
    started = time.perf_counter()
    threads = [threading.Thread(target=mm.get, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.perf_counter() - started < 0.75  # three 0.3 s loads in parallel, not in series
    assert loader.calls == Counter({"a": 1, "b": 1, "c": 1})


def test_second_get_returns_the_loaded_model_without_loading_again() -> None:
    loader = Loader()
    mm = manager(loader)
    assert mm.get("a") is mm.get("a")
    assert loader.calls["a"] == 1


def test_model_count_limit_evicts_the_least_recently_used() -> None:
    clock = Clock()
    loader = Loader()
    mm = manager(loader, clock, max_models=2)
    mm.get("a")
    clock.now += 1
    mm.get("b")
    clock.now += 1
    mm.get("a")  # a is now more recent than b
    clock.now += 1
    mm.get("c")
    assert sorted(m.name for m in mm.loaded()) == ["a", "c"]
    mm.get("b")  # reloaded after eviction
    assert loader.calls["b"] == 2


def test_memory_budget_is_per_device_and_evicts_lru_on_that_device_only() -> None:
    clock = Clock()
    sizes = {"a": 400 * MB, "b": 400 * MB, "c": 400 * MB, "gpu1": 900 * MB}
    mm = manager(Loader(sizes), clock, memory_budget=1000 * MB)
    for name in ("gpu1", "a", "b"):
        mm.get(name)
        clock.now += 1
    mm.get("c")  # cpu: a + b + c = 1200 MB > 1000 MB → a (the cpu LRU) goes, gpu1 stays
    assert sorted(m.name for m in mm.loaded()) == ["b", "c", "gpu1"]
    per_device = {m.name: (m.device, m.bytes) for m in mm.loaded()}
    assert per_device["gpu1"] == ("cuda:0", 900 * MB)


def test_budget_mapping_limits_only_the_devices_it_names() -> None:
    sizes = {"a": 600 * MB, "b": 600 * MB, "gpu1": 600 * MB, "gpu2": 600 * MB}
    mm = manager(Loader(sizes), memory_budget={"cuda:0": 1000 * MB})
    for name in ("a", "b", "gpu1", "gpu2"):
        mm.get(name)
    assert sorted(m.name for m in mm.loaded()) == ["a", "b", "gpu2"]


def test_pinned_model_is_never_evicted() -> None:
    clock = Clock()
    mm = manager(Loader(), clock, max_models=2, pinned=["default"])
    mm.get("default")
    for name in ("x", "y", "z"):
        clock.now += 1
        mm.get(name)
    names = {m.name for m in mm.loaded()}
    assert names == {"default", "z"}
    assert next(m for m in mm.loaded() if m.name == "default").pinned


def test_model_in_use_is_not_evicted_until_released() -> None:
    clock = Clock()
    mm = manager(Loader(), clock, max_models=1, idle_seconds=10)
    with mm.use("a") as model:
        assert model.name == "a"
        with pytest.raises(ModelUnavailable, match=r"cannot load model 'b'.*limit of 1"):
            mm.get("b")
        clock.now += 100
        assert mm.evict_idle() == []
        assert mm.loaded()[0].in_use == 1
    assert mm.loaded()[0].in_use == 0
    mm.get("b")
    assert [m.name for m in mm.loaded()] == ["b"]


def test_model_larger_than_the_budget_is_refused_before_loading() -> None:
    loader = Loader()
    mm = manager(loader, memory_budget=500 * MB, estimate=lambda name: ("cpu", 800 * MB))
    with pytest.raises(ModelUnavailable, match=r"cpu memory budget of 500 MB \(800 MB needed\)"):
        mm.get("huge")
    assert loader.calls["huge"] == 0


def test_estimate_makes_room_before_the_load() -> None:
    clock = Clock()
    seen_loaded: list[list[str]] = []
    loader = Loader({"a": 600 * MB, "b": 600 * MB})
    mm = manager(loader, clock, memory_budget=1000 * MB, estimate=lambda n: ("cpu", 600 * MB))

    def spying_loader(name: str) -> Stub:
        seen_loaded.append(sorted(m.name for m in mm.loaded()))
        return loader(name)

    mm._loader = spying_loader
    mm.get("a")
    clock.now += 1
    mm.get("b")
    assert seen_loaded == [[], []]  # a was unloaded before b started loading


def test_idle_models_are_unloaded_after_the_configured_time() -> None:
    clock = Clock()
    mm = manager(Loader(), clock, idle_seconds=60, pinned=["default"])
    mm.get("default")
    mm.get("old")
    clock.now += 30
    mm.get("recent")
    clock.now += 31  # old: 61 s idle, recent: 31 s
    assert mm.evict_idle() == ["old"]
    assert sorted(m.name for m in mm.loaded()) == ["default", "recent"]
    assert mm.evict_idle(now=clock.now + 100) == ["recent"]
    assert [m.name for m in mm.loaded()] == ["default"]


def test_background_reaper_unloads_idle_models_and_stops_on_close() -> None:
    clock = Clock()
    mm = manager(Loader(), clock, idle_seconds=5)
    mm.get("a")
    mm.start_reaper(interval=0.02)
    clock.now += 10
    deadline = time.monotonic() + 60
    while mm.is_loaded("a") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not mm.is_loaded("a")
    mm.close()
    assert mm._reaper is None


def test_loaded_reports_bytes_device_and_last_use_most_recent_first() -> None:
    clock = Clock()
    mm = manager(Loader({"a": 5 * MB, "gpu": 7 * MB}), clock)
    mm.get("a")
    clock.now += 5
    mm.get("gpu")
    rows = mm.loaded()
    assert [(r.name, r.device, r.bytes, r.last_used) for r in rows] == [
        ("gpu", "cuda:0", 7 * MB, 1005.0),
        ("a", "cpu", 5 * MB, 1000.0),
    ]


def test_failed_load_is_not_remembered_and_can_be_retried() -> None:
    loader = Loader()
    loader.fail.add("a")
    mm = manager(loader)
    with pytest.raises(RuntimeError, match="cannot load a"):
        mm.get("a")
    assert mm.loaded() == []
    loader.fail.clear()
    assert mm.get("a").name == "a"
    assert loader.calls["a"] == 2


def test_unload_drops_a_model_even_if_pinned() -> None:
    mm = manager(Loader(), pinned=["a"])
    mm.get("a")
    assert mm.unload("a") and not mm.unload("a")
    assert mm.loaded() == []


def test_real_engine_is_loaded_once_and_its_bytes_are_its_tensors(
    tiny_model_files: dict[str, Any],
) -> None:
    calls: list[str] = []

    def load(name: str) -> Engine:
        calls.append(name)
        return Engine.from_files(**tiny_model_files, device="cpu")

    mm: ModelManager[Engine] = ModelManager(load)
    engines: list[Engine] = []
    threads = [threading.Thread(target=lambda: engines.append(mm.get("tiny"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["tiny"] and all(e is engines[0] for e in engines)
    engine = engines[0]
    params = sum(p.numel() * 4 for p in engine.model.parameters())
    assert params > 0
    (row,) = mm.loaded()
    assert row.device == "cpu"
    assert row.bytes == engine_bytes(engine) > params
    assert row.bytes == module_bytes(engine.model, engine.vocoder, engine.mel)


def test_module_bytes_counts_shared_tensors_once_and_respects_dtype() -> None:
    layer = torch.nn.Linear(10, 10).to(torch.float16)
    assert module_bytes(layer, layer) == (100 + 10) * 2


def test_registry_estimates_a_models_bytes_from_its_preset_before_loading() -> None:
    from f5serve.registry import Catalog, ModelRegistry, ModelStore

    registry = ModelRegistry(
        Catalog.builtin(), ModelStore("/nonexistent", offline=True), device="cpu"
    )
    device, base = registry.estimate("f5tts-v1-base")
    # REFERENCE.md: Base has 337.1 M parameters with the 2 545-token vocab (≈ 1.35 GB in fp32),
    # plus Vocos (13.5 M) and a few buffers.
    assert device == "cpu"
    assert 1.35e9 < base < 1.45e9
    _, small = registry.estimate("f5tts-hi")
    assert small < 0.7 * base
