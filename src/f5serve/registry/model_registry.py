"""The registry as one object: catalogue + cache + loaded models + language routing."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import torch

from f5serve.engine.compile import resolve_mode, use_cache_dir
from f5serve.engine.config import DiTConfig, resolve_arch
from f5serve.engine.devices import resolve_device
from f5serve.engine.dit import DiT
from f5serve.engine.pipeline import Engine
from f5serve.registry.catalog import Catalog, ModelSpec
from f5serve.registry.language import AUTO, Detection, LanguageRouter
from f5serve.registry.manager import LoadedModel, ModelManager
from f5serve.registry.models_file import load_catalog
from f5serve.registry.store import ModelFiles, ModelStore, ProgressMode

log = logging.getLogger(__name__)

OFFICIAL_VOCAB_SIZE = 2545  # used for estimates before a model's own vocab is known
VOCOS_BYTES = 13_530_000 * 4  # Vocos mel-24khz, float32 (13.5 M parameters)


@functools.lru_cache(maxsize=16)
def dit_parameter_bytes(arch: str | DiTConfig, element_size: int = 4) -> int:
    """Bytes of a DiT's parameters and buffers (built on the meta device: no memory used)."""
    cfg = resolve_arch(arch)
    if cfg.text_num_embeds is None:
        cfg = cfg.with_vocab_size(OFFICIAL_VOCAB_SIZE)
    with torch.device("meta"):
        model = DiT(cfg)
    return sum(t.numel() for t in (*model.parameters(), *model.buffers())) * element_size


class ModelRegistry:
    """Which models exist, where their files are, which are loaded, which speaks a language.

    ``loader`` replaces the default (download if needed, then :meth:`Engine.from_files`).
    """

    def __init__(
        self,
        catalog: Catalog,
        store: ModelStore,
        *,
        device: str | None = None,
        dtype: str | None = None,
        memory_budget: int | Mapping[str, int] | None = None,
        max_models: int | None = None,
        idle_seconds: float | None = None,
        max_batch_frames: int | None = None,
        compile_mode: str = "off",
        cuda_graphs: str = "auto",
        packing: str = "off",
        loader: Callable[[str], Engine] | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.device = device
        self.dtype = dtype
        self.max_batch_frames = max_batch_frames  # None: the device's default
        self.compile_mode = compile_mode  # off, auto, on or max (Engine.compile)
        self.cuda_graphs = cuda_graphs  # off or auto (Engine.use_cuda_graphs)
        self.packing = packing  # off, auto or on (Engine.use_packing)
        self.router = LanguageRouter(catalog)
        self.manager: ModelManager[Engine] = ModelManager(
            loader or self._load,
            memory_budget=memory_budget,
            max_models=max_models,
            idle_seconds=idle_seconds,
            pinned=[catalog.default_name],
            estimate=self.estimate if loader is None else None,
        )

    @classmethod
    def from_environment(
        cls,
        models_file: str | Path | None = None,
        cache_dir: str | Path | None = None,
        progress: ProgressMode = "log",
        *,
        device: str | None = None,
        dtype: str | None = None,
        memory_budget: int | Mapping[str, int] | None = None,
        max_models: int | None = None,
        idle_seconds: float | None = None,
    ) -> ModelRegistry:
        """Catalogue from ``models_file``/``$F5SERVE_MODELS_FILE``, cache from ``cache_dir``/env."""
        return cls(
            load_catalog(models_file),
            ModelStore(cache_dir, progress=progress),
            device=device,
            dtype=dtype,
            memory_budget=memory_budget,
            max_models=max_models,
            idle_seconds=idle_seconds,
        )

    @property
    def default_model(self) -> str:
        """The catalogue's default model (pinned: never unloaded)."""
        return self.catalog.default_name

    def specs(self) -> list[ModelSpec]:
        """Every model of the catalogue, in catalogue order."""
        return list(self.catalog.models)

    def loaded(self) -> list[LoadedModel]:
        """The models in memory, with their device and size."""
        return self.manager.loaded()

    def is_loaded(self, name: str) -> bool:
        return self.manager.is_loaded(name)

    def use(self, name: str) -> AbstractContextManager[Engine]:
        """Hold the engine of ``name`` (loaded on first use) so that it is not evicted while the
        block runs."""
        return self.manager.use(name)

    def on_unload(self, listener: Callable[[str, Engine], None]) -> None:
        """Call ``listener(name, engine)`` whenever a model is unloaded."""
        self.manager.on_unload(listener)

    def detect_language(self, text: str) -> Detection:
        """The language of ``text`` among the catalogue's languages."""
        return self.router.detect(text)

    def warm_up(self) -> None:
        """Load the language detector now rather than on the first ``auto`` request."""
        self.router.warm_up()

    def start_reaper(self) -> None:
        """Unload idle models in the background (when an idle time is set)."""
        self.manager.start_reaper()

    def close(self) -> None:
        """Stop the reaper and unload every model."""
        self.manager.close()

    def spec(self, name: str) -> ModelSpec:
        """The catalogue entry ``name`` (:class:`NotFound` lists the known ones)."""
        return self.catalog.get(name)

    def files(self, name: str) -> ModelFiles:
        """Local files of ``name``, downloaded if needed."""
        return self.store.fetch(self.catalog.get(name))

    def route(self, text: str, language: str = AUTO, model: str | None = None) -> str:
        """The model that should speak ``text`` (see :class:`LanguageRouter`)."""
        return self.router.route(text, language, model)

    def engine(self, name: str) -> Engine:
        """The loaded engine of ``name`` (loaded on first use)."""
        return self.manager.get(name)

    def engine_for(
        self, text: str, language: str = AUTO, model: str | None = None
    ) -> tuple[str, Engine]:
        """Route ``text`` and return the chosen model's name and engine."""
        name = self.route(text, language, model)
        return name, self.manager.get(name)

    def estimate(self, name: str) -> tuple[str, int]:
        """Device and approximate bytes of ``name`` once loaded (before loading it)."""
        dev, dt = resolve_device(self.device, self.dtype)
        device = "cuda:0" if dev.type == "cuda" and dev.index is None else str(dev)
        size = dit_parameter_bytes(self.catalog.get(name).arch, dt.itemsize) + VOCOS_BYTES
        return device, size

    def _load(self, name: str) -> Engine:
        files = self.files(name)
        engine = Engine.from_files(
            files.checkpoint,
            files.vocab,
            files.arch,
            files.vocoder,
            device=self.device,
            dtype=self.dtype,
            text_form=self.catalog.get(name).text_form,
        )
        if self.max_batch_frames is not None:
            engine.max_batch_frames = self.max_batch_frames
        engine.use_cuda_graphs(self.cuda_graphs)
        engine.use_packing(self.packing)
        if resolve_mode(self.compile_mode, engine.device) != "off":
            use_cache_dir(self.store.cache_dir / "torch-compile")
            seconds = engine.compile(self.compile_mode)
            log.info(
                "model %s compiled (%s) and warmed up in %.1f s", name, self.compile_mode, seconds
            )
        return engine
