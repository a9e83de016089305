"""The service objects one app uses, built from settings (the composition root's work)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import JobRow, database_url, open_database
from f5serve.core.jobs import InProcessQueue, JobServices, JobStore, JobWorker
from f5serve.core.jobs.queue import queue_name
from f5serve.core.jobs.worker import JobRunner
from f5serve.core.metrics import Metrics
from f5serve.core.params import same_speech
from f5serve.core.settings import Settings
from f5serve.core.storage import Storage, StorageError, open_storage
from f5serve.core.synthesis import (
    Models,
    Speech,
    SpeechRequest,
    Synthesizer,
    speech_request_from_dict,
)
from f5serve.core.tenants import Limits, Tenancy, Tenant, owner_of
from f5serve.core.voices import TranscriptCheck, VoiceLibrary, VoiceLimits
from f5serve.core.workers import Announcement, Presence, WorkerDirectory
from f5serve.engine.asr import LazyRecognizer
from f5serve.engine.audio import SAMPLE_RATE
from f5serve.engine.pronounce import Lexicon
from f5serve.engine.scheduler import StreamedChunk
from f5serve.errors import Timeout, TooManyRequests
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
    worker: JobRunner
    metrics: Metrics
    tenancy: Tenancy
    workers: WorkerDirectory | None = None  # on PostgreSQL: the processes that synthesise
    presence: Presence | None = None  # this process's entry in it, when it runs jobs
    in_flight: int = 0  # sync requests being answered now
    # Held from counting the queued jobs to storing a new one, so that submissions at once do
    # not overshoot max_queued_jobs (within this process: replicas each count for themselves).
    submitting: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def forwarding(self) -> bool:
        """Whether sync requests go to the workers (an API replica that runs no models)."""
        return self.workers is not None and not self.settings.run_worker

    async def start(self) -> None:
        """Start the job worker and, on PostgreSQL, announce this process to the API replicas."""
        await self.worker.start(run_jobs=self.settings.run_worker)
        if self.presence is not None:
            await self.presence.start()

    def load(self) -> int:
        """Requests and jobs this process is working on."""
        return self.in_flight + self.worker.running

    async def submit_job(
        self, job_id: str, body: dict[str, Any], tenant: Tenant | None = None
    ) -> tuple[JobRow, bool]:
        """Check a job's request now rather than in the worker (bad base64, a refused
        reference, a script's unknown voice), store it as ``tenant``'s and queue it in the
        queue of the model that will speak it; ``(job, created)`` as :meth:`JobStore.create`.
        429 when ``max_queued_jobs`` are queued already, or the key has used its audio of
        today."""
        speech = speech_request_from_dict(body, self.synthesizer.defaults, tenant)
        await asyncio.to_thread(self.tenancy.check_audio, tenant)
        await self.synthesizer.check(speech)
        if speech.script:
            await asyncio.to_thread(self.synthesizer.script_lines, speech)
        model = await asyncio.to_thread(
            self.registry.route, speech.text, speech.language, speech.model
        )
        async with self.submitting:
            queued = await self.worker.queued()
            if queued >= self.settings.max_queued_jobs:
                raise TooManyRequests(f"{queued} jobs are queued; try again later", retry_after=30)
            job, created = await asyncio.to_thread(
                self.jobs.create, job_id, body, queue_name(model), same_speech, owner_of(tenant)
            )
        if created:
            await self.worker.requeued([job.id])
        return job, created

    async def speak(self, request: SpeechRequest, kind: str) -> tuple[Speech, float]:
        """Synthesise within the sync time limit and the key's audio of today; ``(speech, wall
        seconds)``."""
        await asyncio.to_thread(self.tenancy.check_audio, request.tenant)
        started = time.perf_counter()
        self.in_flight += 1
        try:
            speech = await asyncio.wait_for(
                self.synthesizer.synthesize(request), self.settings.request_timeout
            )
        except asyncio.TimeoutError:
            raise Timeout(
                f"synthesis took longer than {self.settings.request_timeout:g} s; "
                "use /v1/jobs for long texts"
            ) from None
        finally:
            self.in_flight -= 1
        wall = time.perf_counter() - started
        self.metrics.observe_synthesis(kind, wall, speech.duration)
        await asyncio.to_thread(self.tenancy.charge, request.tenant, speech.duration)
        return speech, wall

    async def stream(self, request: SpeechRequest) -> AsyncIterator[StreamedChunk]:
        """The chunks as they finish, within the sync time limit (504 :class:`Timeout`) and the
        key's audio of today (each chunk is charged as it is sent)."""
        await asyncio.to_thread(self.tenancy.check_audio, request.tenant)
        deadline = time.monotonic() + self.settings.request_timeout
        pieces = self.synthesizer.stream(request)
        self.in_flight += 1
        try:
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
                await asyncio.to_thread(
                    self.tenancy.charge, request.tenant, len(piece.audio) / SAMPLE_RATE
                )
                yield piece
        finally:
            self.in_flight -= 1

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
        preloads = self.settings.preload and not self.forwarding
        checks["model"] = "ok" if loaded or not preloads else "loading"
        queue = self.worker.check()
        if queue is not None:
            checks["queue"] = queue
        return checks

    def preload(self) -> None:
        """Load the default model and warm up the language detector (blocking); an API replica
        that forwards sync requests loads no model."""
        if self.forwarding:
            self.registry.warm_up()
            return
        name = self.registry.default_model
        log.info("loading the default model %s", name)
        self.registry.engine(name)
        self.registry.warm_up()

    def queue_depths(self) -> dict[str, float]:
        return {"sync": self.models.queue_depth()} | self.worker.depths()

    async def close(self) -> None:
        """Leave the worker directory; stop the job worker, the schedulers and the idle reaper;
        unload the models."""
        if self.presence is not None:
            await self.presence.stop()
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
        packing=settings.packing,
    )
    limits = VoiceLimits(settings.max_upload_bytes, settings.max_reference_seconds)
    recognizer = LazyRecognizer(settings.asr_model, settings.asr_device)  # loaded on first use
    check = TranscriptCheck(settings.check_ref_text, settings.ref_text_max_cer)
    voices = VoiceLibrary(sessions, storage, limits, settings.voices_dir, recognizer, check)
    models = Models(
        registry,
        settings.max_queued_requests,
        openers=settings.openers,
        opener_frames=settings.opener_frames,
    )
    synthesizer = Synthesizer(
        models,
        voices,
        settings.default_voice,
        settings.synthesis_defaults(),
        Lexicon.from_file(settings.pronunciations_file) if settings.pronunciations_file else None,
        recognizer,
    )
    metrics = Metrics()
    key_limits = Limits(settings.key_requests_per_minute, settings.key_audio_seconds_per_day)
    tenancy = Tenancy(sessions, settings.api_key_set, key_limits, metrics)
    job_services = JobServices(synthesizer, storage, tenancy=tenancy)
    jobs, worker = _job_worker(settings, sessions, job_services, metrics)
    services = Services(
        settings,
        sessions,
        storage,
        registry,
        models,
        voices,
        synthesizer,
        jobs,
        worker,
        metrics,
        tenancy,
    )
    if database_url(settings.database_url).get_backend_name() != "sqlite":
        services.workers = WorkerDirectory(sessions, stale_after=settings.job_lease_seconds)
        if settings.run_worker:
            services.presence = _presence(services)
    metrics.watch(services.queue_depths, registry.loaded)
    # Idle unloading (model_idle_seconds) runs on a daemon thread from here on, for the HTTP app
    # and the RunPod worker alike; Services.close() stops it. The default model is pinned.
    registry.start_reaper()
    return services


def _presence(services: Services) -> Presence:
    settings = services.settings
    assert services.workers is not None
    me = Announcement(
        services.worker.worker_id,
        settings.worker_url(),
        settings.worker_model_list,
        max(settings.job_workers, 1),
    )
    return Presence(services.workers, me, services.load, settings.job_lease_seconds / 3)


def _job_worker(
    settings: Settings,
    sessions: sessionmaker[Session],
    services: JobServices,
    metrics: Metrics,
) -> tuple[JobStore, JobRunner]:
    """The job store and worker: procrastinate's queues on PostgreSQL (shared by every process),
    a queue in memory on SQLite (one process)."""
    options: dict[str, Any] = {
        "concurrency": settings.job_workers,
        "timeout": settings.job_timeout,
        "retention": settings.job_retention,
        "cleanup_interval": settings.cleanup_interval,
        "lease_seconds": settings.job_lease_seconds,
        "max_attempts": settings.job_max_attempts,
    }
    if database_url(settings.database_url).get_backend_name() == "sqlite":
        store = JobStore(sessions)
        return store, JobWorker(store, InProcessQueue(), services, metrics, **options)
    from f5serve.core.jobs.distributed import ProcrastinateQueue, QueueWorker

    queue = ProcrastinateQueue(sessions)
    store = JobStore(sessions, queue.enqueue)
    models = settings.worker_model_list
    queues = [queue_name(model) for model in models] if models else None
    worker = QueueWorker(store, queue, settings.database_url, queues, services, metrics, **options)
    return store, worker
