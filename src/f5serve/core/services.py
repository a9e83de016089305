"""The service objects one app uses, built from settings (the composition root's work)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import open_database
from f5serve.core.jobs import InProcessQueue, JobQueue, JobServices, JobStore, JobWorker
from f5serve.core.metrics import Metrics
from f5serve.core.settings import Settings
from f5serve.core.storage import Storage, StorageError, open_storage
from f5serve.core.synthesis import Models, Speech, SpeechRequest, Synthesizer
from f5serve.core.voices import VoiceLibrary, VoiceLimits
from f5serve.engine.pronounce import Lexicon
from f5serve.engine.scheduler import StreamedChunk
from f5serve.errors import Timeout
from f5serve.registry import ModelRegistry, ModelStore, load_catalog

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the routes call."""

    settings: Settings
    sessions: sessionmaker[Session]
    storage: Storage
    registry: ModelRegistry
    models: Models
    voices: VoiceLibrary
    synthesizer: Synthesizer
    jobs: JobStore
    queue: JobQueue
    worker: JobWorker
    metrics: Metrics

    async def speak(self, request: SpeechRequest, kind: str) -> tuple[Speech, float]:
        """Synthesise within the sync time limit; ``(speech, wall seconds)``."""
        started = time.perf_counter()
        try:
            speech = await asyncio.wait_for(
                self.synthesizer.synthesize(request), self.settings.request_timeout
            )
        except asyncio.TimeoutError:
            raise Timeout(
                f"synthesis took longer than {self.settings.request_timeout:g} s; "
                "use /v1/jobs for long texts"
            ) from None
        wall = time.perf_counter() - started
        self.metrics.observe_synthesis(kind, wall, speech.duration)
        return speech, wall

    async def stream(self, request: SpeechRequest) -> AsyncIterator[StreamedChunk]:
        """The chunks as they finish, within the sync time limit (504 :class:`Timeout`)."""
        deadline = time.monotonic() + self.settings.request_timeout
        pieces = self.synthesizer.stream(request)
        while True:
            try:
                piece = await asyncio.wait_for(
                    pieces.__anext__(), max(0.0, deadline - time.monotonic())
                )
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                await pieces.aclose()
                raise Timeout(
                    f"synthesis took longer than {self.settings.request_timeout:g} s"
                ) from None
            yield piece

    def check_ready(self) -> dict[str, str]:
        """What /ready reports: each dependency "ok" or the reason it is not."""
        checks: dict[str, str] = {}
        try:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means not ready
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            self.storage.check()
            checks["storage"] = "ok"
        except StorageError as exc:
            checks["storage"] = f"unavailable: {exc.message}"
        default = self.registry.default_model
        loaded = self.registry.is_loaded(default)
        checks["model"] = "ok" if loaded or not self.settings.preload else "loading"
        return checks

    def preload(self) -> None:
        """Load the default model and warm up the language detector (blocking)."""
        name = self.registry.default_model
        log.info("loading the default model %s", name)
        self.registry.engine(name)
        self.registry.warm_up()

    def queue_depths(self) -> dict[str, float]:
        return {"sync": self.models.queue_depth(), "jobs": float(self.queue.depth())}

    async def close(self) -> None:
        """Stop the job worker, the schedulers and the idle reaper; unload the models."""
        await self.worker.stop()
        self.models.close()
        await asyncio.to_thread(self.registry.close)  # joins the reaper thread


def build_services(settings: Settings) -> Services:
    """Open the database and storage and set up the registry, library, store and worker."""
    sessions = open_database(settings.database_url, settings.database_timeout)
    storage = open_storage(settings.storage_url, **settings.storage_options())
    catalog = load_catalog(settings.models_file)
    if settings.default_model is not None:
        catalog.get(settings.default_model)  # NotFound names the known models
        catalog = dataclasses.replace(catalog, default_name=settings.default_model)
    registry = ModelRegistry(
        catalog,
        ModelStore(settings.cache_dir, progress="log"),
        device=settings.device,
        dtype=settings.dtype,
        memory_budget=settings.memory_budget(),
        max_models=settings.max_loaded_models,
        idle_seconds=settings.model_idle_seconds,
        max_batch_frames=settings.max_batch_frames,
        compile_mode=settings.compile,
        cuda_graphs=settings.cuda_graphs,
    )
    limits = VoiceLimits(settings.max_upload_bytes, settings.max_reference_seconds)
    voices = VoiceLibrary(sessions, storage, limits, settings.voices_dir)
    models = Models(registry, settings.max_queued_requests)
    synthesizer = Synthesizer(
        models,
        voices,
        settings.default_voice,
        settings.synthesis_defaults(),
        Lexicon.from_file(settings.pronunciations_file) if settings.pronunciations_file else None,
    )
    jobs = JobStore(sessions)
    queue = InProcessQueue()
    metrics = Metrics()
    worker = JobWorker(
        jobs,
        queue,
        JobServices(synthesizer, storage),
        metrics,
        concurrency=settings.job_workers,
        timeout=settings.job_timeout,
        retention=settings.job_retention,
        cleanup_interval=settings.cleanup_interval,
        lease_seconds=settings.job_lease_seconds,
    )
    services = Services(
        settings,
        sessions,
        storage,
        registry,
        models,
        voices,
        synthesizer,
        jobs,
        queue,
        worker,
        metrics,
    )
    metrics.watch(services.queue_depths, registry.loaded)
    # Idle unloading (model_idle_seconds) runs on a daemon thread from here on, for the HTTP app
    # and the RunPod worker alike; Services.close() stops it. The default model is pinned.
    registry.start_reaper()
    return services
