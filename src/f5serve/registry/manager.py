"""Which models are loaded: load on first use, LRU under a memory budget, idle unloading.

:class:`ModelManager` is generic over what it loads (an :class:`~f5serve.Engine` in production):
it asks a *loader* for a model by name, measures its bytes, and keeps the most recently used ones
within a per-device byte budget and a model-count limit. Pinned models (the default) are never
evicted; models in use (``with manager.use(name)``) are not evicted either. Concurrent requests for
a model that is not loaded yet wait for one load (a lock per model); other models stay available
meanwhile. Every method is thread-safe. Whoever keeps something tied to a loaded model (a
scheduler, a cache) registers :meth:`on_unload` so that eviction really frees the memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from f5serve.errors import ModelUnavailable

log = logging.getLogger(__name__)

M = TypeVar("M")
Clock = Callable[[], float]
Estimate = Callable[[str], "tuple[str, int] | None"]  # name → (device, bytes) before loading


def module_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of the parameters and buffers of ``modules`` (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
    return total


def engine_bytes(engine: Any) -> int:
    """Bytes an :class:`~f5serve.Engine` holds on its device (DiT, vocoder, mel filters)."""
    parts = [getattr(engine, name, None) for name in ("model", "vocoder", "mel")]
    return module_bytes(*[p for p in parts if isinstance(p, torch.nn.Module)])


def engine_device(engine: Any) -> str:
    """The device an engine runs on, as a string (``"cpu"``, ``"cuda:0"``)."""
    device = getattr(engine, "device", "cpu")
    if isinstance(device, torch.device) and device.type == "cuda" and device.index is None:
        return "cuda:0"
    return str(device)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model as listings and metrics see it."""

    name: str
    device: str  # "cpu", "cuda:0", ...
    bytes: int  # parameters + buffers on the device
    loaded_at: float  # clock time of the load
    last_used: float  # clock time of the last get()/use()
    pinned: bool  # never evicted
    in_use: int  # requests holding it through use()


@dataclass
class _Entry(Generic[M]):
    model: M
    device: str
    bytes: int
    loaded_at: float
    last_used: float
    in_use: int = 0


class ModelManager(Generic[M]):
    """Loaded models under a memory budget; see the module docstring."""

    def __init__(
        self,
        loader: Callable[[str], M],
        *,
        memory_budget: int | Mapping[str, int] | None = None,
        max_models: int | None = None,
        idle_seconds: float | None = None,
        pinned: Iterable[str] = (),
        clock: Clock = time.monotonic,
        size_of: Callable[[M], int] = engine_bytes,
        device_of: Callable[[M], str] = engine_device,
        estimate: Estimate | None = None,
    ) -> None:
        """``memory_budget``: bytes per device (one number for every device, or a mapping such as
        ``{"cuda:0": 20e9, "cpu": 8e9}``; a device missing from the mapping is unlimited).
        ``max_models``: loaded models in all. ``idle_seconds``: unload models unused that long
        (by :meth:`evict_idle` or the reaper thread). ``estimate``: the device and bytes of a
        model before it is loaded, so room is made first (the real size is checked after)."""
        if max_models is not None and max_models < 1:
            raise ValueError("max_models must be at least 1")
        self._loader = loader
        self._budget = memory_budget
        self._max_models = max_models
        self.idle_seconds = idle_seconds
        self._pinned = set(pinned)
        self._clock = clock
        self._size_of = size_of
        self._device_of = device_of
        self._estimate = estimate
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry[M]] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self._unload_listeners: list[Callable[[str, M], None]] = []

    # ----------------------------------------------------------------- limits
    @property
    def memory_budget(self) -> int | Mapping[str, int] | None:
        """The byte budget: one number for every device, per device, or None (unlimited)."""
        return self._budget

    @property
    def max_models(self) -> int | None:
        """The most models loaded at once, or None (unlimited)."""
        return self._max_models

    @property
    def reaping(self) -> bool:
        """True while the idle reaper thread runs (see :meth:`start_reaper`)."""
        return self._reaper is not None and self._reaper.is_alive()

    # ----------------------------------------------------------------- public API
    def get(self, name: str) -> M:
        """The model ``name``, loading it on first use."""
        return self._acquire(name, hold=False)

    @contextmanager
    def use(self, name: str) -> Iterator[M]:
        """Hold ``name`` for the duration of a request: it cannot be evicted meanwhile."""
        model = self._acquire(name, hold=True)
        try:
            yield model
        finally:
            with self._lock:
                entry = self._entries.get(name)
                if entry is not None and entry.model is model:
                    entry.in_use -= 1
                    entry.last_used = self._clock()

    def pin(self, name: str) -> None:
        """Never evict ``name`` (it is still loaded lazily)."""
        with self._lock:
            self._pinned.add(name)

    def unpin(self, name: str) -> None:
        """Let ``name`` be evicted again."""
        with self._lock:
            self._pinned.discard(name)

    def on_unload(self, listener: Callable[[str, M], None]) -> None:
        """Call ``listener(name, model)`` whenever a model is evicted, unloaded or closed, so
        that the caller drops what it keeps for that model (on the thread that unloads it, after
        the model left the manager; a failing listener is logged and the others still run)."""
        with self._lock:
            self._unload_listeners.append(listener)

    def unload(self, name: str) -> bool:
        """Drop ``name`` now (even if pinned or in use); False if it was not loaded."""
        with self._lock:
            entry = self._entries.pop(name, None)
        if entry is None:
            return False
        self._release(name, entry, "unloaded")
        return True

    def evict_idle(self, now: float | None = None) -> list[str]:
        """Unload models unused for ``idle_seconds`` (not pinned, not in use); their names."""
        if self.idle_seconds is None:
            return []
        now = self._clock() if now is None else now
        with self._lock:
            idle = [
                name
                for name, e in self._entries.items()
                if self._evictable(name, e) and now - e.last_used >= self.idle_seconds
            ]
            victims = [(name, self._entries.pop(name)) for name in idle]
        for name, entry in victims:
            self._release(name, entry, "idle")
        return idle

    def loaded(self) -> list[LoadedModel]:
        """Loaded models, most recently used first."""
        with self._lock:
            rows = [
                LoadedModel(
                    name,
                    e.device,
                    e.bytes,
                    e.loaded_at,
                    e.last_used,
                    name in self._pinned,
                    e.in_use,
                )
                for name, e in self._entries.items()
            ]
        return sorted(rows, key=lambda r: r.last_used, reverse=True)

    def is_loaded(self, name: str) -> bool:
        """True when ``name`` is in memory."""
        with self._lock:
            return name in self._entries

    def start_reaper(self, interval: float | None = None) -> None:
        """Run :meth:`evict_idle` every ``interval`` seconds on a daemon thread."""
        if self.idle_seconds is None or self._reaper is not None:
            return
        every = interval if interval is not None else max(1.0, self.idle_seconds / 4)

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.evict_idle()
                except Exception:  # keep reaping; a failure here must not kill the thread
                    log.exception("idle model eviction failed")

        self._reaper = threading.Thread(target=loop, name="f5serve-model-reaper", daemon=True)
        self._reaper.start()

    def close(self) -> None:
        """Stop the reaper thread and unload everything."""
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join()
            self._reaper = None
        with self._lock:
            entries = list(self._entries.items())
            self._entries.clear()
        for name, entry in entries:
            self._release(name, entry, "closed")

    # ----------------------------------------------------------------- loading
    def _acquire(self, name: str, hold: bool) -> M:
        model = self._lookup(name, hold)
        if model is not None:
            return model
        with self._lock:
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:  # one load per model; other models are not blocked
            model = self._lookup(name, hold)
            if model is not None:
                return model
            return self._load(name, hold)

    def _lookup(self, name: str, hold: bool) -> M | None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return None
            entry.last_used = self._clock()
            entry.in_use += int(hold)
            return entry.model

    def _load(self, name: str, hold: bool) -> M:
        guess = None
        if self._estimate is not None and self._budget is not None:  # only budgets need it
            guess = self._estimate(name)
        if guess is not None:
            self._make_room(name, *guess)
        else:
            self._make_room(name, None, 0)
        started = time.perf_counter()
        model = self._loader(name)
        device, size = self._device_of(model), self._size_of(model)
        now = self._clock()
        with self._lock:
            self._entries[name] = _Entry(model, device, size, now, now, int(hold))
        log.info(
            "loaded model %s on %s (%.1f MB) in %.2f s",
            name,
            device,
            size / 1e6,
            time.perf_counter() - started,
        )
        self._make_room(name, device, 0)  # the real size may exceed the estimate
        return model

    # ----------------------------------------------------------------- eviction
    def _limit(self, device: str) -> int | None:
        if self._budget is None or isinstance(self._budget, int | float):
            return None if self._budget is None else int(self._budget)
        value = self._budget.get(device)
        return None if value is None else int(value)

    def _evictable(self, name: str, entry: _Entry[M]) -> bool:
        return name not in self._pinned and entry.in_use == 0

    def _over(self, name: str, device: str | None, extra: int) -> str | None:
        """Why the models (plus ``extra`` bytes of ``name`` on ``device``) do not fit, or None."""
        count = len(self._entries) + (name not in self._entries)
        if self._max_models is not None and count > self._max_models:
            return f"the limit of {self._max_models} loaded model(s)"
        limit = self._limit(device) if device is not None else None
        if limit is not None:
            used = sum(e.bytes for e in self._entries.values() if e.device == device) + extra
            if used > limit:
                return (
                    f"the {device} memory budget of {limit / 1e6:.0f} MB "
                    f"({used / 1e6:.0f} MB needed)"
                )
        return None

    def _make_room(self, name: str, device: str | None, extra: int) -> None:
        """Evict least recently used models until ``name`` fits; raise if it never can."""
        victims: list[tuple[str, _Entry[M]]] = []
        with self._lock:
            while (reason := self._over(name, device, extra)) is not None:
                victim = self._lru_victim(name, device, reason)
                if victim is None:
                    break
                victims.append((victim, self._entries.pop(victim)))
        for victim_name, entry in victims:
            self._release(victim_name, entry, "evicted for " + name)
        if reason is None:
            return
        if name in self._entries:  # already loaded: over budget only because others are held
            log.warning("model %s exceeds %s; pinned or busy models keep it over", name, reason)
            return
        raise ModelUnavailable(
            f"cannot load model {name!r}: it would exceed {reason} and the loaded models are "
            "pinned or in use",
            details={"model": name, "loaded": sorted(self._entries)},
        )

    def _lru_victim(self, name: str, device: str | None, reason: str) -> str | None:
        by_device = "memory budget" in reason
        candidates = [
            (e.last_used, n)
            for n, e in self._entries.items()
            if n != name and self._evictable(n, e) and (not by_device or e.device == device)
        ]
        return min(candidates)[1] if candidates else None

    def _release(self, name: str, entry: _Entry[M], why: str) -> None:
        log.info("unloaded model %s from %s (%s)", name, entry.device, why)
        with self._lock:
            listeners = list(self._unload_listeners)
        for listener in listeners:
            try:
                listener(name, entry.model)
            except Exception:  # one listener's bug must not keep the model (or others) around
                log.exception("unload listener failed for model %s", name)
        del entry.model
        if entry.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
